"""Eval set loading: the workflow loader's safe YAML, every problem at its file:line:col."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import rolegraph
from rolegraph.errors import SpecError
from rolegraph.evals.loader import load_evalset, parse_evalset

REPO = Path(__file__).resolve().parents[2]
FILE = Path("set.yaml")


def problems_of(text: str, workflow: rolegraph.Workflow | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(SpecError) as info:
        parse_evalset(text, FILE, workflow)
    return [(p.location(), p.path, p.message) for p in info.value.problems]


class TestLoadEvalset:
    def test_minimal(self) -> None:
        """A set with one question loads; lists default to empty."""
        evalset = parse_evalset("rolegraph_eval: 1\nname: s\nquestions:\n  - id: q1\n    inputs: {topic: x}\n")
        (question,) = evalset.questions
        assert (question.id, question.inputs, question.gold_sources, question.must_include) == (
            "q1",
            {"topic": "x"},
            [],
            [],
        )

    def test_bundled_set_loads_against_the_demo(self) -> None:
        """examples/evals/library_questions.yaml is valid, and its inputs fit examples/literature_review.yaml."""
        workflow = rolegraph.load(REPO / "examples" / "literature_review.yaml")
        evalset = load_evalset(REPO / "examples" / "evals" / "library_questions.yaml", workflow)
        assert len(evalset.questions) >= 16
        assert all(q.gold_sources and q.must_include for q in evalset.questions)

    def test_bundled_gold_sources_are_in_the_library(self) -> None:
        """Every gold library id of the bundled set names a note of the demo library."""
        evalset = load_evalset(REPO / "examples" / "evals" / "library_questions.yaml")
        notes = {p.stem for p in (REPO / "examples" / "library").glob("*.md")}
        ids = {g for q in evalset.questions for g in q.gold_sources if ":" not in g}
        assert ids and ids <= notes

    def test_schema_problems_at_their_place(self) -> None:
        """Unknown keys, wrong types and a bad version are each reported at file:line:col with a hint."""
        text = (
            "rolegraph_eval: 2\n"
            "name: s\n"
            "questions:\n"
            "  - id: q1\n"
            "    gold_source: [a]\n"
            "  - id: q2\n"
            "    must_include: low-rank\n"
        )
        assert problems_of(text) == [
            (
                "set.yaml:1:17",
                "rolegraph_eval",
                "unsupported format version 2: this version of rolegraph reads 'rolegraph_eval: 1'",
            ),
            ("set.yaml:5:5", "questions[0].gold_source", "unknown key 'gold_source' — did you mean 'gold_sources'?"),
            ("set.yaml:7:19", "questions[1].must_include", "expected a list such as [a, b], got the string 'low-rank'"),
        ]

    def test_missing_keys_and_duplicate_ids(self) -> None:
        """A missing name and a repeated question id are reported with what to do."""
        found = problems_of("rolegraph_eval: 1\nquestions:\n  - id: a\n  - id: a\n")
        assert [(where, path) for where, path, _ in found] == [("set.yaml:1:1", "name")]
        assert "give the eval set a name" in found[0][2]
        found = problems_of("rolegraph_eval: 1\nname: s\nquestions:\n  - id: a\n  - id: a\n")
        assert found == [("set.yaml:5:9", "questions[1].id", "duplicate question id 'a' (also questions[0])")]

    def test_a_fact_made_of_the_question_s_own_words_is_refused(self) -> None:
        """A must_include fact whose content words all come from the inputs (any word form) is refused at its line."""
        text = (
            "rolegraph_eval: 1\nname: s\nquestions:\n"
            "  - id: lora\n"
            "    inputs: {topic: low-rank adaptation for fine-tuning large language models}\n"
            "    must_include:\n"
            "      - low-rank\n"
            "      - Fine-Tuned Language Model\n"
            "      - frozen weights\n"
            "      - the\n"
        )
        found = problems_of(text)
        assert [(where, path) for where, path, _ in found] == [
            ("set.yaml:7:9", "questions[0].must_include[0]"),
            ("set.yaml:8:9", "questions[0].must_include[1]"),
            ("set.yaml:10:9", "questions[0].must_include[3]"),
        ]
        assert found[0][2].startswith(
            "fact 'low-rank' is made only of words of the question's own inputs "
            "('low-rank adaptation for fine-tuning large language models'): a report that repeats its topic "
            "would state it; write a fact a good answer states and the question does not"
        )
        assert found[2][2].startswith("fact 'the' has no content word")

    def test_inputs_checked_against_the_workflow(self) -> None:
        """With a workflow, an unknown or mistyped input is reported at the question's inputs."""
        workflow = rolegraph.load(REPO / "examples" / "literature_review.yaml")
        text = "rolegraph_eval: 1\nname: s\nquestions:\n  - id: a\n    inputs: {topik: x, questions: many}\n"
        found = problems_of(text, workflow)
        assert [(where, path) for where, path, _ in found] == [
            ("set.yaml:5:21", "questions[0].inputs.topik"),
            ("set.yaml:5:35", "questions[0].inputs.questions"),
        ]
        assert "unknown input 'topik'" in found[0][2]
        assert "input 'questions' must be an integer" in found[1][2]

    def test_empty_file_and_yaml_tags(self) -> None:
        """The loader's safety applies: an empty file and a Python tag are refused, in eval-set words."""
        assert problems_of("") == [
            ("set.yaml:1:1", "", "the file is empty; an eval set starts with 'rolegraph_eval: 1'")
        ]
        (problem,) = problems_of("rolegraph_eval: 1\nname: !!python/name:os.system x\nquestions: [{id: a}]\n")
        assert problem[:2] == ("set.yaml:2:7", "name")
        assert "an eval set holds plain data only" in problem[2]

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A missing file is one problem naming it."""
        with pytest.raises(SpecError) as info:
            load_evalset(tmp_path / "nope.yaml")
        assert "cannot read the eval set file" in info.value.problems[0].message

    def test_readme_example_loads(self) -> None:
        """The eval set shown in the README is valid and fits the demo workflow."""
        readme = (REPO / "README.md").read_text()
        [block] = [
            b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL) if b.startswith("rolegraph_eval")
        ]
        workflow = rolegraph.load(REPO / "examples" / "literature_review.yaml")
        assert parse_evalset(block, REPO / "README.md", workflow).questions[0].id == "lora"
