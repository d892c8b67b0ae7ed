"""Loading eval sets: the workflow loader's safe, bounded YAML, with every problem at its file:line:col.

Besides the schema, a set is checked for what would make its scores lie: duplicate
question ids, and ``must_include`` facts made only of the question's own input words
(a report that merely repeats its topic would state them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rolegraph.errors import SpecError
from rolegraph.evals.spec import EvalSet
from rolegraph.evals.text import content_stems, input_text
from rolegraph.workflow import Workflow
from rolegraph.workflows.loader import Check, DocumentKind, load_document, parse_document

__all__ = ["EVALSET", "load_evalset", "parse_evalset"]

EVALSET: DocumentKind[EvalSet] = DocumentKind(
    "eval set",
    EvalSet,
    "rolegraph_eval",
    "rolegraph_eval, name, questions, ...",
    {
        "rolegraph_eval": "put 'rolegraph_eval: 1' (the format version) at the top of the file",
        "name": "give the eval set a name, e.g. 'name: library_questions'",
        "questions": "add 'questions:', a list of {id, inputs, gold_sources, must_include, ...}",
        "id": "give the question an id, e.g. 'id: lora'",
    },
)
"""The eval set document kind, for `rolegraph.workflows.loader.parse_document`."""


def _unique_ids(evalset: EvalSet) -> Iterator[tuple[str, str]]:
    seen: dict[str, int] = {}
    for number, question in enumerate(evalset.questions):
        if question.id in seen:
            yield (
                f"questions[{number}].id",
                f"duplicate question id {question.id!r} (also questions[{seen[question.id]}])",
            )
        seen.setdefault(question.id, number)


def _facts_beyond_inputs(evalset: EvalSet) -> Iterator[tuple[str, str]]:
    """A ``must_include`` fact whose content words are all words of the question's inputs measures nothing."""
    for number, question in enumerate(evalset.questions):
        given = input_text(question.inputs)
        asked = content_stems(given)
        for index, fact in enumerate(question.must_include):
            stems = content_stems(fact)
            if not stems:
                yield (
                    f"questions[{number}].must_include[{index}]",
                    f"fact {fact!r} has no content word (only words such as 'the', 'of', 'method'): "
                    "write what a good answer states",
                )
            elif stems <= asked:
                yield (
                    f"questions[{number}].must_include[{index}]",
                    f"fact {fact!r} is made only of words of the question's own inputs ({given[:80]!r}): a report "
                    "that repeats its topic would state it; write a fact a good answer states and the question "
                    "does not (a finding, a method, a number)",
                )


def _inputs_of(workflow: Workflow) -> Check[EvalSet]:
    declared = workflow.spec.inputs
    where = f"workflow {workflow.spec.name!r}"

    def check(evalset: EvalSet) -> Iterator[tuple[str, str]]:
        for number, question in enumerate(evalset.questions):
            at = f"questions[{number}].inputs"
            for name in question.inputs:
                if name not in declared:
                    known = ", ".join(declared) or "none"
                    yield f"{at}.{name}", f"unknown input {name!r}; the {where} takes: {known}"
            try:
                workflow.resolve_inputs({k: v for k, v in question.inputs.items() if k in declared})
            except SpecError as exc:
                for problem in exc.problems:
                    path = problem.path.removeprefix("inputs.")
                    yield (f"{at}.{path}" if problem.path else at), f"{problem.message} ({where})"

    return check


def _checks(workflow: Workflow | None) -> list[Check[EvalSet]]:
    checks: list[Check[EvalSet]] = [_unique_ids, _facts_beyond_inputs]
    return checks if workflow is None else [*checks, _inputs_of(workflow)]


def load_evalset(path: Path, workflow: Workflow | None = None) -> EvalSet:
    """Load and validate an eval set file; with `workflow`, also check each question's inputs against it.

    Raises:
        SpecError: The file cannot be read or is invalid; every problem, with file:line:col.
    """
    return load_document(path, EVALSET, _checks(workflow))


def parse_evalset(text: str | bytes, file: Path | None = None, workflow: Workflow | None = None) -> EvalSet:
    """Parse and validate an eval set document (see `load_evalset`).

    Raises:
        SpecError: Every problem found, with file:line:col.
    """
    return parse_document(text, EVALSET, file, _checks(workflow))
