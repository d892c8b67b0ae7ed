"""Hostile YAML: every abuse ends in a clear SpecError (file:line where there is one) with bounded memory.

Memory is measured with tracemalloc (the peak of Python allocations while loading);
time is never asserted (machines are noisy), but the work that used to grow with the
square of the file (did-you-mean hints, line lookups) is counted instead.
"""

from __future__ import annotations

import difflib
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rolegraph.errors import Problem, SpecError
from rolegraph.evals.loader import load_evalset
from rolegraph.workflows import reader
from rolegraph.workflows.loader import MAX_BYTES, MAX_HINTS, MAX_PROBLEMS, load_spec, parse_spec

HEAD = "rolegraph: 1\nname: wf\n"
STEP = "steps:\n  a: {role: writer, task: t}\n"
MB = 1 << 20


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Measure the peak of traced allocations inside the block (bytes, in the yielded list)."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def refused(load: Callable[[], Any], limit_mb: float) -> list[Problem]:
    """The problems `load` raises as a SpecError, checking its peak memory stays under `limit_mb`."""
    with peak_memory() as peak, pytest.raises(SpecError) as info:
        load()
    assert peak[0] < limit_mb * MB, f"peak {peak[0] / MB:.1f} MiB"
    return info.value.problems


def billion_laughs(levels: int = 9) -> str:
    lines = [HEAD.rstrip("\n"), 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


class TestAliasBombs:
    def test_billion_laughs(self) -> None:
        """9 levels of 9 aliases (a billion strings) stop at the value limit, in tens of MiB, not tens of GiB."""
        (problem,) = refused(lambda: parse_spec(billion_laughs(), Path("wf.yaml")), 32)
        assert problem.location().startswith("wf.yaml:")
        assert "holds more than 100000 values once its aliases (*name) are expanded" in problem.message

    def test_merge_key_bomb(self) -> None:
        """Merge keys (<<: [*a, *a, ...]) expand through the same count."""
        lines = [HEAD.rstrip("\n"), "m0: &m0 {a: 1, b: 2}"]
        lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, 9)]
        (problem,) = refused(lambda: parse_spec("\n".join(lines) + "\n"), 32)
        assert "once its aliases" in problem.message

    def test_alias_of_a_huge_string(self) -> None:
        """Ten thousand aliases of a 900 kB string share it: no copy is made, memory stays near the file's size."""
        text = HEAD + STEP + "description: &a " + "x" * 900_000 + "\nx: [" + ", ".join(["*a"] * 10_000) + "]\n"
        (problem,) = refused(lambda: parse_spec(text), 30)
        assert "unknown key 'x'" in problem.message or "x" in problem.path

    def test_recursive_alias(self) -> None:
        """An alias inside its own anchor is refused at its line."""
        (problem,) = refused(lambda: parse_spec(HEAD + "x: &a [*a]\n", Path("wf.yaml")), 5)
        assert (problem.location(), problem.path) == ("wf.yaml:3:4", "x")
        assert "nests deeper than 50 levels" in problem.message

    def test_eval_sets_have_the_same_guard(self, tmp_path: Path) -> None:
        """Eval-set files are read by the same bounded loader."""
        path = tmp_path / "evals.yaml"
        path.write_text(billion_laughs().replace("rolegraph: 1\nname: wf", "rolegraph_eval: 1"))
        (problem,) = refused(lambda: load_evalset(path), 32)
        assert problem.file == path and "once its aliases" in problem.message


class TestTags:
    def test_python_object_tags_construct_nothing(self, tmp_path: Path) -> None:
        """!!python/object/apply is refused at its line, and the command it names never runs."""
        marker = tmp_path / "pwned"
        text = HEAD + f"steps:\n  a: {{role: writer, task: !!python/object/apply:os.system ['touch {marker}']}}\n"
        (problem,) = refused(lambda: parse_spec(text, Path("wf.yaml")), 5)
        assert problem.location() == "wf.yaml:4:27"
        assert "unsupported YAML tag '!!python/object/apply:os.system'" in problem.message
        assert not marker.exists()

    @pytest.mark.parametrize("tag", ["!!python/name:os.system", "!!python/module:os", "!!binary", "!!set"])
    def test_other_constructing_tags(self, tag: str) -> None:
        """Every tag that would build a non-plain value is refused the same way."""
        (problem,) = refused(lambda: parse_spec(HEAD + STEP + f"description: {tag} x\n"), 5)
        assert "unsupported YAML tag" in problem.message and problem.path == "description"


class TestNesting:
    def test_deep_flow_nesting(self) -> None:
        """100,000 nested [ is refused while composing, before Python's recursion limit."""
        (problem,) = refused(lambda: parse_spec(HEAD + "steps: " + "[" * 100_000 + "]" * 100_000 + "\n"), 30)
        assert problem.line == 3 and "nests deeper than 50 levels" in problem.message

    def test_deep_block_nesting(self) -> None:
        """Deep block-style mappings are refused at the line where the limit is crossed."""
        text = HEAD + "".join(" " * i + f"k{i}:\n" for i in range(1000))
        (problem,) = refused(lambda: parse_spec(text), 10)
        assert problem.line == 52 and "nests deeper than 50 levels" in problem.message


class TestSize:
    def test_huge_file_is_not_read_past_the_limit(self, tmp_path: Path) -> None:
        """A 200 MiB (sparse) file costs at most the 1 MiB limit in memory, and the error names the file."""
        path = tmp_path / "huge.yaml"
        with path.open("wb") as out:
            out.write(HEAD.encode())
            out.truncate(200 * MB)
        (problem,) = refused(lambda: load_spec(path), 2 * MAX_BYTES / MB + 1)
        assert problem.file == path and "larger than 1 MiB" in problem.message

    def test_many_unknown_names_give_bounded_hints(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Thousands of unknown steps and roles: each one counted, but only a bounded number of
        did-you-mean searches (each scans every name; unbounded, the work grew with the square of the file)."""
        searches = 0
        real = difflib.get_close_matches

        def counted(*args: Any, **kwargs: Any) -> list[str]:
            nonlocal searches
            searches += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(difflib, "get_close_matches", counted)
        n = 1000
        steps = "".join(f"  s{i}: {{role: r{i}, task: t, depends_on: [x{i}]}}\n" for i in range(n))
        problems = refused(lambda: parse_spec(HEAD + "steps:\n" + steps), 100)
        assert len(problems) == MAX_PROBLEMS + 1
        assert f"and {2 * n - MAX_PROBLEMS} more problems not listed" in problems[-1].message
        assert searches <= MAX_HINTS + 20 + 10  # loader hints, graph hints, and the few validation messages

    def test_many_template_errors_in_block_scalars(self) -> None:
        """Thousands of broken templates in block scalars: each listed at its own line (found once, not per error)."""
        n = 1000
        steps = "".join(f"  s{i}:\n    role: writer\n    task: |\n      {{{{ bad(\n" for i in range(n))
        problems = refused(lambda: parse_spec(HEAD + "steps:\n" + steps), 100)
        assert [p.line for p in problems[:-1]] == [7 + 4 * i for i in range(MAX_PROBLEMS)]
        assert f"and {n - MAX_PROBLEMS} more problems" in problems[-1].message

    def test_thousands_of_problems_take_linear_work(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """6,000 steps, each with an unknown key and an unknown role: the first 200 problems listed, the rest
        counted, and hiding the problems already told walks a bounded number of parent paths per problem
        (it compared each problem with every hidden path: 12,000 problems took 214 s)."""
        walked = 0
        real = reader._parent

        def counted(path: str) -> str | None:
            nonlocal walked
            walked += 1
            return real(path)

        monkeypatch.setattr(reader, "_parent", counted)
        n = 6000
        steps = "".join(f"  s{i}: {{role: r{i}, task: t, colour: red}}\n" for i in range(n))
        problems = refused(lambda: parse_spec(HEAD + "steps:\n" + steps), 200)
        assert len(problems) == MAX_PROBLEMS + 1
        assert problems[-1].message.startswith(f"and {2 * n - MAX_PROBLEMS} more problems not listed")
        assert {p.message.split(" ", 2)[1] for p in problems[:-1]} == {"key"}  # in file order, the first found
        assert walked < 20 * n

    def test_endless_number(self) -> None:
        """A 900,000-digit integer is a clear error at its place, not a hang in int()."""
        text = HEAD + "steps: {a: {role: writer, task: t, max_steps: " + "9" * 900_000 + "}}\n"
        (problem,) = refused(lambda: parse_spec(text), 20)
        assert problem.path == "steps.a.max_steps" and "too long to read" in problem.message


class TestEncoding:
    def test_latin1_file_names_file_offset_line_and_column(self, tmp_path: Path) -> None:
        """A Latin-1 byte deep in the file: a SpecError naming the file, the byte, its offset, line and column."""
        path = tmp_path / "latin1.yaml"
        path.write_bytes((HEAD + STEP + "description: caf\xe9\n").encode("latin-1"))
        (problem,) = refused(lambda: load_spec(path), 5)
        offset = len(HEAD + STEP) + len("description: caf")
        assert (problem.file, problem.line, problem.column) == (path, 5, 17)
        assert f"byte 0xe9 at offset {offset}" in problem.message and "save the file as UTF-8" in problem.message

    def test_utf16_is_named(self, tmp_path: Path) -> None:
        """A UTF-16 file (an editor's default on some systems) is recognised and named as such."""
        path = tmp_path / "utf16.yaml"
        path.write_bytes((HEAD + STEP).encode("utf-16"))
        (problem,) = refused(lambda: load_spec(path), 5)
        assert problem.file == path and "UTF-16" in problem.message

    def test_binary_garbage(self) -> None:
        """Random binary bytes are a SpecError, never a UnicodeDecodeError or a YAML exception."""
        (problem,) = refused(lambda: parse_spec(bytes(range(256)) * 64), 5)
        assert "not UTF-8" in problem.message or "character YAML does not allow" in problem.message


class TestDuplicates:
    def test_duplicate_keys_at_every_level(self) -> None:
        """Duplicates are reported wherever they are, each naming both lines."""
        text = HEAD + "name: again\nsteps:\n  a: {role: writer, task: t, task: u}\n"
        problems = refused(lambda: parse_spec(text, Path("wf.yaml")), 5)
        assert [(p.location(), p.path) for p in problems] == [("wf.yaml:3:1", "name"), ("wf.yaml:5:30", "steps.a.task")]
        assert "duplicate key 'name' on lines 2 and 3" in problems[0].message


def _corpus() -> dict[str, str | bytes]:
    """Every hostile document of this file (at sizes that read in a moment), and a few syntax errors."""
    merge_bomb = [HEAD.rstrip("\n"), "m0: &m0 {a: 1, b: 2}"]
    merge_bomb += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, 9)]
    flat = HEAD + "x: [" + ", ".join(["1"] * 100_001) + "]\n"
    return {
        "billion laughs": billion_laughs(),
        "merge-key bomb": "\n".join(merge_bomb) + "\n",
        "recursive alias": HEAD + "x: &a [*a]\n",
        "undefined alias": HEAD + STEP + "description: *nowhere\n",
        "python tag": HEAD + "steps:\n  a: {role: writer, task: !!python/object/apply:os.system ['true']}\n",
        "custom tag": HEAD + STEP + "description: !mine x\n",
        "binary tag": HEAD + STEP + "description: !!binary aGVsbG8=\n",
        "deep flow nesting": HEAD + "steps: " + "[" * 5_000 + "]" * 5_000 + "\n",
        "deep block nesting": HEAD + "".join(" " * i + f"k{i}:\n" for i in range(200)),
        "too many values": flat,
        "endless number": HEAD + "steps: {a: {role: writer, task: t, max_steps: " + "9" * 5_000 + "}}\n",
        "duplicates": HEAD + "name: again\nsteps:\n  a: {role: writer, task: t, task: u}\n",
        "non-UTF-8": (HEAD + STEP + "description: caf\xe9\n").encode("latin-1"),
        "UTF-16": (HEAD + STEP).encode("utf-16"),
        "control character": HEAD + STEP + "description: a\x07b\n",
        "binary garbage": bytes(range(256)) * 8,
        "lone surrogate": HEAD + STEP + "description: a\ud800b\n",
        "unicode line breaks": HEAD + STEP + "description: a\u2028b\x85c é\nbogus: {x: 1}\n",
        "tabs": HEAD + "steps:\n\ta: {role: writer, task: t}\n",
        "unclosed flow": HEAD + "steps: {a: {role: writer, task: t}\n",
        "unquoted brackets": HEAD + "roles:\n  r: {output: {x: list[string]}}\n" + STEP,
        "unquoted jinja": HEAD + "steps:\n  a: {role: writer, task: {{ inputs.topic }}}\n",
        "bad indentation": HEAD + "steps:\n  a:\n    role: writer\n   task: t\n",
        "two documents": HEAD + STEP + "---\nname: other\n",
        "empty": "",
        "not a mapping": "- a\n- b\n",
        "many unknowns": HEAD + "steps:\n" + "".join(f"  s{i}: {{role: r{i}, task: t, x: 1}}\n" for i in range(300)),
    }


NEEDS_LIBYAML = pytest.mark.skipif(
    not reader.USE_LIBYAML, reason="PyYAML is built without libyaml here: there is no C parser to compare or use"
)


@NEEDS_LIBYAML
class TestBothReaders:
    @pytest.mark.parametrize(("name", "text"), list(_corpus().items()), ids=list(_corpus()))
    def test_libyaml_and_python_tell_the_same_problems(
        self, name: str, text: str | bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """libyaml's C parser and the pure-Python one refuse each hostile document with the same problems."""
        told = {}
        for fast in (True, False):
            monkeypatch.setattr(reader, "USE_LIBYAML", fast)
            with pytest.raises(SpecError) as info:
                parse_spec(text, Path("wf.yaml"))
            told[fast] = [str(problem) for problem in info.value.problems]
        assert told[True] == told[False]
        assert told[True]

    def test_libyaml_reads_the_document(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With libyaml present, a valid document is read by its parser (the fallback is not used)."""
        used: list[str] = []
        real = reader._fast_loader

        def spy(noun: str) -> Any:
            used.append(noun)
            return real(noun)

        monkeypatch.setattr(reader, "_fast_loader", spy)
        monkeypatch.setattr(reader, "_BoundedLoader", None)  # the fallback would fail
        assert parse_spec(HEAD + STEP).steps["a"].role == "writer"
        assert used == ["workflow"]
