"""Passages narrowed to the topic's papers, and the evidence the critic kept, grouped by question."""

from __future__ import annotations

from rolegraph.research import passages, select

SCOPE = {"papers": [{"id": "a", "title": "A"}, {"id": "b#p3", "title": "B"}]}


def ev(source: str, text: str, relevance: int = 5) -> dict[str, object]:
    return {"source_id": source, "evidence": text, "relevance": relevance}


class TestPassages:
    def test_keeps_hits_of_papers_in_scope(self) -> None:
        """Hits of papers outside the scope go; a page of a document in scope stays; text is kept when given."""
        found = {
            "data": [
                {"id": "zz", "title": "Off topic", "score": 9.0},
                {"id": "a", "title": "A", "score": 5.0, "text": "A's passage."},
                {"id": "b#p7", "document": "b", "title": "B", "score": 4.0},
            ]
        }
        kept = passages(found, {"question": "Q?", "paper": "a", "title": "A"}, {"papers": [*SCOPE["papers"]]})
        assert kept["sources"] == ["a"]  # b#p7 belongs to document b, not in scope (only its page b#p3 was)
        assert kept["passages"] == [{"source_id": "a", "title": "A", "score": 5.0, "text": "A's passage."}]
        assert (kept["question"], kept["paper"], kept["title"]) == ("Q?", "a", "A")

    def test_nothing_in_scope_gives_no_passage(self) -> None:
        """A search that found only papers off the topic gives the question no passage (and no evidence)."""
        assert passages({"data": [{"id": "zz", "score": 1.0}]}, {}, SCOPE)["passages"] == []


class TestSelect:
    def test_dropped_claims_are_left_out_by_number_across_questions(self) -> None:
        """Claims are numbered across questions in order; the critic's numbers are left out; groups keep order."""
        gathered = [
            {"question": "Q1?", "evidence": [ev("a", "One.", 2), ev("a", "Two.", 9)]},
            {"question": "Q2?", "evidence": [ev("b", "Three.")]},
        ]
        kept = select(gathered, drop=[1])
        assert kept["groups"] == [
            {"question": "Q1?", "evidence": [ev("a", "Two.", 9)]},
            {"question": "Q2?", "evidence": [ev("b", "Three.")]},
        ]
        assert kept["dropped"] == [{"claim": 1, **ev("a", "One.", 2)}]
        assert (kept["kept"], kept["contested"]) == (2, [])

    def test_most_relevant_first_and_repeats_once(self) -> None:
        """Within a group, evidence goes most relevant first; a sentence chosen twice is kept for its first question."""
        gathered = [{"evidence": [ev("a", "One.", 1), ev("a", "Two.", 8)]}, {"evidence": [ev("a", "Two.", 8)]}]
        kept = select(gathered, questions=["Q1?", "Q2?"])
        assert kept["groups"] == [{"question": "Q1?", "evidence": [ev("a", "Two.", 8), ev("a", "One.", 1)]}]

    def test_a_question_never_loses_all_its_evidence(self) -> None:
        """When the critic rejects all of a question's claims, its best-rated one stays, listed as contested."""
        gathered = [{"question": "Q1?", "evidence": [ev("a", "One.", 2), ev("a", "Two.", 6)]}]
        kept = select(gathered, drop=[1, 2])
        assert kept["groups"] == [{"question": "Q1?", "evidence": [ev("a", "Two.", 6)]}]
        assert kept["contested"] == [{"claim": 2, **ev("a", "Two.", 6)}]
        assert kept["dropped"] == [{"claim": 1, **ev("a", "One.", 2)}]

    def test_an_accepting_critic_flags_but_keeps(self) -> None:
        """A critic that accepts the findings has its rejections listed as flagged; every claim stays."""
        gathered = [{"question": "Q1?", "evidence": [ev("a", "One.", 2), ev("a", "Two.", 6)]}]
        kept = select(gathered, drop=[1], verdict="accept")
        assert (kept["kept"], kept["dropped"], kept["flagged"]) == (2, [], [1])
