"""The papers on a topic (the ranking's natural break), their key terms, and one search per question."""

from __future__ import annotations

from rolegraph.research import key_terms, natural_break, queries, scope

HITS = [
    {"id": "houlsby2019adapters", "title": "Parameter-Efficient Transfer Learning for NLP", "score": 3.84},
    {"id": "lester2021prompttuning", "title": "The Power of Scale for Parameter-Efficient Prompt Tuning", "score": 3.8},
    {"id": "dettmers2023qlora", "title": "QLoRA: Efficient Finetuning of Quantized LLMs", "score": 3.75},
    {"id": "li2021prefix", "title": "Prefix-Tuning: Optimizing Continuous Prompts for Generation", "score": 3.57},
    {"id": "hu2021lora", "title": "LoRA: Low-Rank Adaptation of Large Language Models", "score": 3.49},
    {"id": "touvron2023llama", "title": "LLaMA: Open and Efficient Foundation Language Models", "score": 2.83},
    {"id": "jiang2023mistral", "title": "Mistral 7B", "score": 2.29},
]


class TestNaturalBreak:
    def test_cuts_at_the_deepest_drop(self) -> None:
        """The papers kept are those before the deepest relative drop in score."""
        assert natural_break([11.7, 7.0, 3.9, 2.8], at_most=6) == 2
        assert natural_break([3.84, 3.77, 3.75, 3.57, 3.49, 2.83, 2.29], at_most=6) == 5

    def test_no_deep_drop_keeps_all_allowed(self) -> None:
        """Scores that fall gently are all on the topic, up to `at_most`."""
        assert natural_break([5.0, 4.8, 4.6, 4.5], at_most=3) == 3

    def test_one_or_none(self) -> None:
        """One score keeps one; none keeps none."""
        assert (natural_break([2.0], at_most=6), natural_break([], at_most=6)) == (1, 0)


class TestScope:
    def test_keeps_the_papers_on_the_topic(self) -> None:
        """The five fine-tuning papers stay; LLaMA and Mistral, past the break, do not."""
        found = scope(HITS, "parameter-efficient fine-tuning")
        assert found["sources"] == [h["id"] for h in HITS[:5]]
        assert found["titles"]["hu2021lora"].startswith("LoRA")
        assert found["topic"] == "parameter-efficient fine-tuning"

    def test_one_paper_per_document(self) -> None:
        """Passages of one document count once, with their best score and id."""
        hits = [
            {"id": "big#p2", "document": "big", "title": "Big", "score": 5.0},
            {"id": "big#p9", "document": "big", "title": "Big", "score": 4.9},
            {"id": "small", "title": "Small", "score": 4.8},
        ]
        assert [p["id"] for p in scope(hits, "x")["papers"]] == ["big#p2", "small"]

    def test_key_terms_from_titles(self) -> None:
        """Each title's first term (a name before a colon, a hyphenated term, an acronym) in title order,
        then their second terms, each once."""
        titles = [h["title"] for h in HITS[:5]]
        assert key_terms(titles) == ["Parameter-Efficient", "QLoRA", "Prefix-Tuning", "LoRA", "NLP", "Low-Rank", "LLMs"]


class TestQueries:
    def test_each_question_gets_the_paper_it_names_or_the_next(self) -> None:
        """A question naming a paper's title words goes with that paper; others take the untaken ones in order."""
        papers = scope(HITS, "parameter-efficient fine-tuning")
        items = queries(["How does QLoRA work?", "Why does it matter?", "Why does it matter?"], papers, "PEFT")["items"]
        assert [(i["question"], i["paper"]) for i in items] == [
            ("How does QLoRA work?", "dettmers2023qlora"),
            ("Why does it matter?", "houlsby2019adapters"),
        ]
        assert items[0]["query"] == "How does QLoRA work? QLoRA: Efficient Finetuning of Quantized LLMs PEFT"

    def test_papers_named_by_a_planner_win_when_valid(self) -> None:
        """A paper the planner named (in scope, untaken) is used; one out of scope is replaced."""
        papers = scope(HITS, "t")
        items = queries(["A?", "B?"], papers, "t", papers=["hu2021lora", "jiang2023mistral"], limit=1)["items"]
        assert [i["paper"] for i in items] == ["hu2021lora"]
