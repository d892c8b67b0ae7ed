"""Extractive writing: evidence grouped by question, the model's arrangement, the report assembled verbatim."""

from __future__ import annotations

from rolegraph.agents.citations import answer_schema
from rolegraph.agents.extractive import (
    LINKS,
    Group,
    arrangement_model,
    compose_report,
    evidence_groups,
    groups_evidence,
    report_title,
)

E1 = {"source_id": "a", "evidence": "Adapters train few weights.", "relevance": 5}
E2 = {"source_id": "b", "evidence": "The update merges after training.", "relevance": 3}
E3 = {"source_id": "c", "evidence": "Prefixes are learned vectors.", "relevance": 9}


class TestEvidenceGroups:
    def test_a_grouping_step_gives_its_groups(self) -> None:
        """A step output with `groups` gives one group per entry, with its question; nothing else is read."""
        upstream = {
            "select": {"groups": [{"question": "Q1?", "evidence": [E1, E2]}], "dropped": [E3]},
            "gather": [{"evidence": [E3]}],
        }
        assert evidence_groups(upstream) == [Group("Q1?", (("a", E1["evidence"]), ("b", E2["evidence"])))]

    def test_a_grouping_step_that_kept_nothing_decides(self) -> None:
        """Empty `groups` means no evidence, even when a dropped claim is in the same output."""
        upstream = {"select": {"groups": [], "dropped": [E1]}}
        assert evidence_groups(upstream) == []
        assert groups_evidence(upstream)

    def test_for_each_items_are_groups(self) -> None:
        """Without `groups`, each item of a for_each output holding evidence is a group (its `question` if any)."""
        upstream = {"research": [{"question": "Q1?", "evidence": [E1]}, {"claims": [{**E2, "claim": "x"}]}, {}]}
        groups = evidence_groups(upstream)
        assert [(g.question, [s for s, _ in g.evidence]) for g in groups] == [("Q1?", ["a"]), ("", ["b"])]
        assert not groups_evidence(upstream)

    def test_otherwise_all_evidence_is_one_group(self) -> None:
        """Evidence anywhere else in the outputs read is one group, each piece once."""
        upstream = {"critique": {"verdict": "accept"}, "notes": {"items": {"x": E1, "y": E1, "z": E2}}}
        assert evidence_groups(upstream) == [Group("", (("a", E1["evidence"]), ("b", E2["evidence"])))]


class TestArrangement:
    def test_schema_per_group(self) -> None:
        """Each paragraph's order holds exactly its group's numbers; its links are one fewer, from LINKS."""
        schema = answer_schema(arrangement_model((2, 1)))
        first, second = schema["properties"]["paragraphs"]["prefixItems"]
        assert first["properties"]["order"]["items"]["enum"] == [1, 2]
        assert (first["properties"]["order"]["minItems"], first["properties"]["order"]["maxItems"]) == (2, 2)
        assert first["properties"]["links"]["items"]["enum"] == list(LINKS)
        assert (second["properties"]["links"]["minItems"], second["properties"]["links"]["maxItems"]) == (0, 0)

    def test_report_is_the_evidence_in_the_chosen_order(self) -> None:
        """Sentences appear verbatim in the model's order, joined by its words, each citing its source inline."""
        groups = [Group("Q1?", (("a", "Adapters train few weights."), ("b", "The update merges after training.")))]
        report = compose_report("A review", groups, {"paragraphs": [{"order": [2, 1], "links": ["Moreover"]}]})
        assert report == {
            "title": "A review",
            "paragraphs": [
                {
                    "citations": ["b", "a"],
                    "text": "The update merges after training. [@b] Moreover, adapters train few weights. [@a]",
                }
            ],
        }

    def test_names_keep_their_capitals_and_nothing_is_lost(self) -> None:
        """A name after a joining word keeps its case; numbers the model repeated or left out still appear once
        (without a joining word of the model's: none)."""
        groups = [
            Group("", (("a", "LoRA freezes the weights."), ("b", "QLoRA quantizes them."), ("c", "Adapters help.")))
        ]
        report = compose_report("T", groups, {"paragraphs": [{"order": [3, 3], "links": ["Also"]}]})
        text = report["paragraphs"][0]["text"]
        assert text == "Adapters help. [@c] Also, LoRA freezes the weights. [@a] QLoRA quantizes them. [@b]"

    def test_a_paragraph_opens_with_a_sentence_that_stands_alone(self) -> None:
        """The model's first sentence "It ..." or "The authors ..." moves after the first that names its subject;
        a paragraph whose every sentence leans on another keeps the model's order."""
        groups = [Group("", (("a", "It trains few weights."), ("b", "The authors merge it."), ("c", "LoRA adapts.")))]
        report = compose_report("T", groups, {"paragraphs": [{"order": [1, 2, 3], "links": ["", ""]}]})
        assert (
            report["paragraphs"][0]["text"]
            == "LoRA adapts. [@c] It trains few weights. [@a] The authors merge it. [@b]"
        )
        leaning = [Group("", (("a", "It trains few weights."), ("b", "They merge it.")))]
        kept = compose_report("T", leaning, {"paragraphs": [{"order": [2, 1], "links": [""]}]})
        assert kept["paragraphs"][0]["text"] == "They merge it. [@b] It trains few weights. [@a]"

    def test_a_sentence_with_its_own_connective_gets_no_joining_word(self) -> None:
        """ "However, ..." after the model's "Moreover" stays "However, ..." (not "Moreover, however, ...")."""
        groups = [Group("", (("a", "LoRA trains few weights."), ("b", "However, it adds no latency.")))]
        report = compose_report("T", groups, {"paragraphs": [{"order": [1, 2], "links": ["Moreover"]}]})
        assert report["paragraphs"][0]["text"] == "LoRA trains few weights. [@a] However, it adds no latency. [@b]"

    def test_a_joining_word_is_used_once_per_paragraph(self) -> None:
        """The model's "Also" before every sentence joins only the first; the others follow without a word."""
        groups = [Group("", (("a", "LoRA adapts."), ("b", "QLoRA quantizes."), ("c", "Adapters add layers.")))]
        report = compose_report("T", groups, {"paragraphs": [{"order": [1, 2, 3], "links": ["Also", "Also"]}]})
        assert (
            report["paragraphs"][0]["text"] == "LoRA adapts. [@a] Also, QLoRA quantizes. [@b] Adapters add layers. [@c]"
        )

    def test_joining_words_only_add(self) -> None:
        """No joining word claims likeness, contrast or cause between two quotes; "" (none) is one of them."""
        assert "" in LINKS
        assert not {"Similarly", "Likewise", "Indeed", "However", "Therefore", "Thus", "Instead"} & set(LINKS)

    def test_title_is_the_first_line_of_the_task(self) -> None:
        """The report's title is the task's first line, without a heading mark or a final colon."""
        assert report_title("\n# A review of LoRA:\nWrite it.") == "A review of LoRA"
        assert report_title("") == "Report"
