"""Citation fields: constrained to retrieved ids, quotes constrained to the cited source's sentences, found again."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import BaseModel, Field

from rolegraph.agents.citations import (
    MAX_SENTENCES_PER_SOURCE,
    NO_SOURCE,
    cites_sources,
    constrain_citations,
    find_citations,
    find_claims,
    find_quotes,
    inline_refs,
    sentences,
)
from rolegraph.agents.roles import QUOTE_MARK, SOURCE_ID_MARK, Claim, ReportOutput, ResearchOutput, SourceId


class Optional(BaseModel):
    """An answer whose citation and claim may be left out."""

    cite: SourceId | None = None
    claim: Claim | None = None
    note: str = ""


REPORT = inline_refs(ReportOutput.model_json_schema())
RESEARCH = inline_refs(ResearchOutput.model_json_schema())
OPTIONAL = inline_refs(Optional.model_json_schema())
CLAIM = RESEARCH["properties"]["claims"]["items"]

ALPHA = "Alpha inserts small adapter layers into a frozen network.  The adapters train only a few parameters per task."
BETA = (
    "Beta represents each update as a product of two low-rank matrices. Short one. It merges the update after training."
)


def citation_enum(ids: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": ids, SOURCE_ID_MARK: True}


def claim_branch(source_id: str, quotes: list[str]) -> dict[str, Any]:
    """The Claim schema with its citation fixed to `source_id` and its evidence one of `quotes`."""
    properties = {
        **CLAIM["properties"],
        "source_id": {"type": "string", "const": source_id, SOURCE_ID_MARK: True},
        "evidence": {"type": "string", "enum": quotes, QUOTE_MARK: True},
    }
    return {**CLAIM, "properties": properties}


class TestSentences:
    def test_splits_on_sentence_ends_and_collapses_whitespace(self) -> None:
        """Text splits after . ! ? before a capital, digit, quote or parenthesis; whitespace runs become one space."""
        text = (
            'First   sentence is long enough!\nSecond one asks a question? "Quoted" third sentence here. '
            + "(An aside in brackets.)"
        )
        assert sentences(text) == [
            "First sentence is long enough!",
            "Second one asks a question?",
            '"Quoted" third sentence here.',
            "(An aside in brackets.)",
        ]

    def test_no_split_before_lowercase(self) -> None:
        """An abbreviation followed by a lowercase word does not end the sentence."""
        assert sentences("Methods such as e.g. adapters train few weights.") == [
            "Methods such as e.g. adapters train few weights."
        ]

    def test_drops_short_long_and_repeated_sentences(self) -> None:
        """Sentences under 20 characters or 4 words, or over 400 characters, and repeats, are not quotable."""
        long = "A" + "a" * 400 + "."
        text = (
            f"Too short. This sentence is quotable. {long} This sentence is quotable. Three words only. "
            "Another quotable sentence here."
        )
        assert sentences(text) == ["This sentence is quotable.", "Another quotable sentence here."]

    def test_limit(self) -> None:
        """At most `limit` sentences are returned, the first ones (default MAX_SENTENCES_PER_SOURCE)."""
        text = " ".join(f"Sentence number {n} is quotable." for n in range(20))
        assert sentences(text, limit=2) == ["Sentence number 0 is quotable.", "Sentence number 1 is quotable."]
        assert len(sentences(text)) == MAX_SENTENCES_PER_SOURCE

    def test_empty_text(self) -> None:
        """Empty or blank text has no quotable sentence."""
        assert (sentences(""), sentences("  \n ")) == ([], [])


class TestConstrainCitations:
    def test_source_id_fields_become_an_enum_of_the_ids(self) -> None:
        """Every SourceId field (here list items) only accepts the given ids, deduplicated in order."""
        constrained = constrain_citations(REPORT, ["b", "a", "b"])
        paragraph = constrained["properties"]["paragraphs"]["items"]
        assert paragraph["properties"]["citations"]["items"] == citation_enum(["b", "a"])
        expected = copy.deepcopy(REPORT)
        expected["properties"]["paragraphs"]["items"]["properties"]["citations"]["items"] = citation_enum(["b", "a"])
        assert constrained == expected

    def test_input_schema_is_not_modified(self) -> None:
        """The schema passed in is left as it was."""
        before = copy.deepcopy(RESEARCH)
        constrain_citations(RESEARCH, ["a"], {"a": ALPHA})
        assert before == RESEARCH

    def test_without_ids_only_a_placeholder_is_allowed(self) -> None:
        """Before any retrieval, a citation can only be the NO_SOURCE placeholder, never a real-looking id."""
        constrained = constrain_citations(REPORT, [])
        items = constrained["properties"]["paragraphs"]["items"]["properties"]["citations"]["items"]
        assert items == citation_enum([NO_SOURCE])

    def test_citation_inside_anyof_is_constrained(self) -> None:
        """An optional citation (``SourceId | None``) is constrained in its string branch."""
        constrained = constrain_citations(OPTIONAL, ["a"])
        assert constrained["properties"]["cite"]["anyOf"] == [citation_enum(["a"]), {"type": "null"}]

    def test_claim_becomes_one_branch_per_source_with_its_sentences(self) -> None:
        """A Claim is an anyOf: per source, the citation fixed to its id and the quote an enum of its sentences."""
        constrained = constrain_citations(RESEARCH, ["alpha", "beta"], {"alpha": ALPHA, "beta": BETA})
        assert constrained["properties"]["claims"]["items"] == {
            "anyOf": [
                claim_branch(
                    "alpha",
                    [
                        "Alpha inserts small adapter layers into a frozen network.",
                        "The adapters train only a few parameters per task.",
                    ],
                ),
                claim_branch(
                    "beta",
                    [
                        "Beta represents each update as a product of two low-rank matrices.",
                        "It merges the update after training.",
                    ],
                ),
            ]
        }

    def test_sources_without_quotable_text_are_left_out(self) -> None:
        """Sources with no text, or only short sentences, get no branch; one branch left is used without anyOf."""
        texts = {"alpha": ALPHA, "empty": "", "tiny": "Too short. Also short."}
        constrained = constrain_citations(RESEARCH, ["empty", "alpha", "tiny", "unseen"], texts)
        assert constrained["properties"]["claims"]["items"] == claim_branch("alpha", sentences(ALPHA))

    def test_claim_without_any_quotable_source_keeps_a_free_quote(self) -> None:
        """If no source has quotable text, the citation is still an enum and the quote is left as it was."""
        constrained = constrain_citations(RESEARCH, ["a", "b"], {"a": "short."})
        item = constrained["properties"]["claims"]["items"]
        assert item == {**CLAIM, "properties": {**CLAIM["properties"], "source_id": citation_enum(["a", "b"])}}

    def test_optional_claim_is_constrained(self) -> None:
        """A Claim inside an anyOf (``Claim | None``) still gets its per-source branch."""
        constrained = constrain_citations(OPTIONAL, ["alpha"], {"alpha": ALPHA})
        claim_schema = OPTIONAL["properties"]["claim"]["anyOf"][0]
        branch = constrained["properties"]["claim"]["anyOf"][0]
        assert branch["properties"]["source_id"] == {"type": "string", "const": "alpha", SOURCE_ID_MARK: True}
        assert branch["properties"]["evidence"] == {"type": "string", "enum": sentences(ALPHA), QUOTE_MARK: True}
        assert branch["properties"]["claim"] == claim_schema["properties"]["claim"]


class TestFindCitations:
    def test_finds_citations_in_lists_of_objects(self) -> None:
        """Every id in a citation field is found, in order, with repeats; other strings are not."""
        data = {
            "title": "alpha",
            "paragraphs": [{"citations": ["a", "b"], "text": "a"}, {"citations": ["a"], "text": "c"}],
        }
        assert list(find_citations(REPORT, data)) == ["a", "b", "a"]

    def test_finds_citations_in_claims(self) -> None:
        """The source of each claim is a citation; evidence and claim text are not."""
        data = {
            "claims": [
                {"source_id": "a", "evidence": "b", "claim": "c"},
                {"source_id": "d", "evidence": "e", "claim": "f"},
            ]
        }
        assert list(find_citations(RESEARCH, data)) == ["a", "d"]

    def test_finds_optional_citations(self) -> None:
        """Citations in anyOf fields are found; a null one is not."""
        data = {"cite": "x", "claim": {"source_id": "y", "evidence": "q", "claim": "c"}, "note": "z"}
        assert list(find_citations(OPTIONAL, data)) == ["x", "y"]
        assert list(find_citations(OPTIONAL, {"cite": None, "claim": None})) == []

    def test_ignores_keys_and_shapes_the_schema_does_not_have(self) -> None:
        """Unknown keys and values of an unexpected shape yield nothing rather than failing."""
        assert list(find_citations(REPORT, {"other": ["a"], "paragraphs": "not a list"})) == []


class TestFindQuotes:
    def test_pairs_each_quote_with_its_source(self) -> None:
        """Each claim gives its (source id, evidence) pair, in order."""
        data = {
            "claims": [
                {"source_id": "a", "evidence": "first quote", "claim": "c"},
                {"source_id": "b", "evidence": "second quote", "claim": "d"},
            ]
        }
        assert list(find_quotes(RESEARCH, data)) == [("a", "first quote"), ("b", "second quote")]

    def test_finds_quotes_in_optional_claims(self) -> None:
        """A claim in an anyOf (``Claim | None``) has its quote checked like any other."""
        data = {"cite": "x", "claim": {"source_id": "y", "evidence": "a quote", "claim": "c"}}
        assert list(find_quotes(OPTIONAL, data)) == [("y", "a quote")]
        assert list(find_quotes(OPTIONAL, {"claim": None})) == []

    def test_objects_without_both_fields_give_nothing(self) -> None:
        """A schema with citations but no quote field (a report) has no quotes; a partial claim is skipped."""
        report = {"title": "t", "paragraphs": [{"citations": ["a"], "text": "x"}]}
        assert list(find_quotes(REPORT, report)) == []
        assert list(find_quotes(RESEARCH, {"claims": [{"source_id": "a", "claim": "c"}]})) == []


class TestFindClaims:
    def test_each_claim_with_its_text(self) -> None:
        """Each object with a citation and a quote gives its source, quote, and its other text as the claim."""
        data = {
            "claims": [
                {"source_id": "a", "evidence": "first quote", "claim": "c"},
                {"source_id": "b", "evidence": "second quote", "claim": "d"},
            ]
        }
        assert list(find_claims(RESEARCH, data)) == [("a", "first quote", "c"), ("b", "second quote", "d")]

    def test_an_object_without_other_text_claims_nothing(self) -> None:
        """A quoted object with no text beside its citation and quote has an empty claim."""

        class Bare(BaseModel):
            source: SourceId
            quote: Annotated[str, Field(json_schema_extra={QUOTE_MARK: True})]
            score: int

        schema = inline_refs(Bare.model_json_schema())
        assert list(find_claims(schema, {"source": "a", "quote": "q", "score": 3})) == [("a", "q", "")]


class Plain(BaseModel):
    """An answer with no citation field."""

    score: int
    notes: list[str]


class TestCitesSources:
    def test_answers_with_a_citation_field_anywhere_cite(self) -> None:
        """A citation field at any depth (a report's paragraphs, a claim, an optional citation) counts."""
        assert all(cites_sources(model) for model in (ReportOutput, ResearchOutput, Optional))

    def test_answers_without_one_cite_nothing(self) -> None:
        """A model with no citation field does not cite; citations and quotes found in its answers are none."""
        answer = {"score": 3, "notes": ["lora", "x"]}
        assert not cites_sources(Plain)
        schema = inline_refs(Plain.model_json_schema())
        assert (list(find_citations(schema, answer)), list(find_quotes(schema, answer))) == ([], [])
