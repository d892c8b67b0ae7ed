"""The standing guard: every file rolegraph reads back, damaged at random, and every read command over it.

A pristine home holds an eval of two runs (A and B) of a scripted research-then-write
workflow, made with the model-call cache on (so B was answered from it). Each example
copies it, damages one file — A's ``trace.jsonl``, ``run.json``, ``run.sqlite``, ``steps.jsonl``
or ``sources.jsonl``, the eval's manifest, the scripted model's file, or the home's
``cache.sqlite`` — by cutting it short, flipping bits, or swapping a value for one of
another type, then runs every command that reads it (``runs``, ``trace``, ``trace
diff``, ``trace export``, ``resume``, ``replay``, ``eval --resume``, ``run``, ``cache
stats``, ``cache clear``) and the viewer's API. A damaged cache never fails a run: ``run
--cache`` must complete. Each must end without a traceback: exit 0 (the damage was harmless, or a
torn write skipped), 1 (a resumed, replayed or evaluated run failed), or 2 with one
``error`` line naming the damaged item. Whatever the damage, run B is still listed as
completed and readable, by the CLI and by the viewer.

The fast lane runs a fixed, derandomised sample (`EXAMPLES` per file); the ``slow``
variant draws `SLOW_EXAMPLES` fresh ones per file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from eval_projects import GOOD, write_eval_project
from rolegraph.cli import app
from rolegraph.viewer import create_app

EXAMPLES = 8
"""Damaged copies per file in the fast lane (fixed: derandomised)."""
SLOW_DEFAULT = 150
SLOW_EXAMPLES = int(os.environ.get("ROLEGRAPH_FUZZ_EXAMPLES", SLOW_DEFAULT))
"""Damaged copies per file in the slow lane (``ROLEGRAPH_FUZZ_EXAMPLES`` sets another count)."""
SLOW_FRESH = os.environ.get("ROLEGRAPH_FUZZ_FRESH") == "1"
"""Whether the slow lane draws fresh damage (to look for new faults) rather than its fixed, repeatable sample."""

FILES = ("trace", "summary", "store", "step", "sources", "manifest", "script", "cache")
"""What can be damaged: run A's files, the eval's manifest, the scripted model's file, the model-call cache."""

OTHER_VALUES: list[Any] = [None, True, 0, -1, 2**70, 1e308, "", "x", "../../../x", [], [1, "a"], {}, {"a": 1}]
"""What a value is swapped for (one of another type than the value it replaces)."""

STATS: Counter[str] = Counter()
"""Outcomes seen, printed at the end of the module (run with -s to see them)."""


@dataclass(frozen=True)
class Pristine:
    """The undamaged project and home, and the ids in them."""

    project: Path
    home: Path
    run_a: str
    run_b: str
    eval_id: str


def cli(home: Path, *args: str | Path) -> Result:
    env = {"ROLEGRAPH_HOME": str(home), "COLUMNS": "200", "FORCE_COLOR": None, "TTY_COMPATIBLE": None}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pristine]:
    """An eval of two runs of the review workflow, recorded once for the module."""
    root = tmp_path_factory.mktemp("pristine")
    project = write_eval_project(root / "project", {"good": GOOD})
    home = root / "home"
    evaluation = [project / "review.yaml", project / "set.yaml", "--model", "scripted:good.yaml", "--repeat", "2"]
    done = cli(home, "eval", *evaluation, "--cache")
    assert done.exit_code == 0, done.output
    assert json.loads(cli(home, "cache", "stats", "--json").stdout)["hits"] == 3  # run B came from the cache
    (eval_dir,) = (home / "evals").iterdir()
    run_a, run_b = (r["run_id"] for r in json.loads((eval_dir / "manifest.json").read_text())["runs"])
    (home / "index.sqlite").unlink()  # derived: each copy rebuilds it from its own folders
    for stray in [*home.rglob("run.sqlite-*"), *home.glob("cache.sqlite-*")]:
        stray.unlink()
    yield Pristine(project, home, run_a, run_b, eval_dir.name)
    print(f"\ndamaged-file outcomes: {dict(sorted(STATS.items()))}")


def target(copy: Pristine, which: str) -> Path:
    """The file of the copy that the example damages."""
    run = copy.home / "runs" / copy.run_a
    return {
        "trace": run / "trace.jsonl",
        "summary": run / "run.json",
        "store": run / "run.sqlite",
        "step": run / "steps.jsonl",
        "sources": run / "sources.jsonl",
        "manifest": copy.home / "evals" / copy.eval_id / "manifest.json",
        "script": copy.project / "good.yaml",
        "cache": copy.home / "cache.sqlite",
    }[which]


# --- damage ----------------------------------------------------------------------------------------------------


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value, the whole value included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _swap(value: Any, draw: st.DrawFn) -> Any:
    """`value` with one of its parts replaced by a value of another type."""
    place = draw(st.sampled_from(list(_paths(value))))
    current: Any = value
    for key in place[:-1]:
        current = current[key]
    old = current[place[-1]] if place else value
    new = draw(st.sampled_from([v for v in OTHER_VALUES if type(v) is not type(old)]))
    if not place:
        return new
    current[place[-1]] = new
    return value


def _swap_text(text: str, draw: st.DrawFn, loads: Any, dumps: Any) -> str:
    try:
        value = loads(text)
    except Exception:  # already not parseable: leave it
        return text
    return str(dumps(_swap(value, draw)))


def _swap_jsonl(data: bytes, draw: st.DrawFn) -> bytes:
    lines = data.decode("utf-8").splitlines()
    index = draw(st.integers(0, len(lines) - 1))
    lines[index] = _swap_text(lines[index], draw, json.loads, json.dumps)
    return ("\n".join(lines) + "\n").encode()


_JSON_COLUMNS = {
    "run": ["record"],
    "steps": ["state"],
    "calls": ["result", "request"],
    "routed": ["context"],
    "entries": ["completion"],
}


def _swap_store(path: Path, draw: st.DrawFn) -> None:
    """Swap a value in the run store: a column for another type, or a part of the JSON a column holds."""
    with sqlite3.connect(path) as db:
        tables = [
            t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if t != "sqlite_sequence"
        ]
        table = draw(
            st.sampled_from(sorted(t for t in tables if db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]))
        )
        info = list(db.execute(f"PRAGMA table_info({table})"))
        columns = [row[1] for row in info]
        column = draw(st.sampled_from(columns))
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        # A row is found by its rowid, or by its primary key in a WITHOUT ROWID table (a new store's steps).
        keys = [row[1] for row in info if row[5]] if "WITHOUT ROWID" in sql.upper() else ["rowid"]
        where = " AND ".join(f"{key} = ?" for key in keys)
        key = draw(st.sampled_from(list(db.execute(f"SELECT {', '.join(keys)} FROM {table}"))))
        (old,) = db.execute(f"SELECT {column} FROM {table} WHERE {where}", key).fetchone()
        if column in _JSON_COLUMNS.get(table, []) and isinstance(old, str) and draw(st.booleans()):
            new: Any = _swap_text(old, draw, json.loads, json.dumps)
        else:
            new = draw(st.sampled_from([v for v in OTHER_VALUES if type(v) is not type(old)]))
            new = json.dumps(new) if isinstance(new, list | dict) else new
            new = str(new) if isinstance(new, int) and abs(new) >= 2**63 else new
        try:
            db.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (new, *key))
        except sqlite3.IntegrityError:  # NOT NULL, UNIQUE: the store's own schema refuses it
            pass
    db.close()


def damage(path: Path, which: str, draw: st.DrawFn) -> str:
    """Damage the file in place; what was done, for the statistics."""
    data = path.read_bytes()
    how = draw(st.sampled_from(["truncate", "flip", "swap"]))
    if how == "truncate":
        path.write_bytes(data[: draw(st.integers(0, max(0, len(data) - 1)))])
    elif how == "flip":
        flipped = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            flipped[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        path.write_bytes(bytes(flipped))
    elif which in ("store", "cache"):
        _swap_store(path, draw)
    elif which in ("trace", "sources", "step"):
        path.write_bytes(_swap_jsonl(data, draw))
    elif which == "script":
        dump = lambda value: yaml.safe_dump(value, sort_keys=False)  # noqa: E731
        path.write_text(_swap_text(data.decode(), draw, yaml.safe_load, dump))
    else:
        path.write_text(_swap_text(data.decode(), draw, json.loads, json.dumps))
    return how


# --- what must hold --------------------------------------------------------------------------------------------

_PROBLEMS = re.compile(r"\d+ problem\(s\) found\.")


def check(result: Result, command: list[str], allowed: tuple[int, ...]) -> None:
    """No traceback; an allowed exit; exit 2 says why in one `error` line (or a workflow's problem list)."""
    name = " ".join(command[:2]) if command[1:2] in (["diff"], ["export"], ["--resume"]) else command[0]
    assert result.exception is None or isinstance(result.exception, SystemExit), (command, result.output)
    assert result.exit_code in allowed, (command, result.exit_code, result.output)
    STATS[f"{name} exit {result.exit_code}"] += 1
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("error ")]
        assert len(errors) == 1 or (errors and _PROBLEMS.fullmatch(lines[-1])), (command, result.stderr)


def check_viewer(copy: Pristine) -> None:
    """The viewer lists B as completed and serves it; A's routes (its view, spans, search, outputs, sources, the
    comparison with B) and the eval's answer 200, 404 or 422, never 500."""
    with TestClient(create_app(copy.home), base_url="http://127.0.0.1:8765") as client:
        runs = client.get("/api/runs")
        assert runs.status_code == 200, runs.text
        listed = {r["run_id"]: r["status"] for r in runs.json()["runs"]}
        assert listed.get(copy.run_b) == "completed", listed
        STATS[f"viewer lists A as {listed.get(copy.run_a)}"] += 1
        a = f"/api/runs/{copy.run_a}"
        urls = [a, f"{a}/stamp", f"{a}/spans/x", f"{a}/search?q=adapters", f"{a}/outputs/report"]
        urls += [f"{a}/sources/alpha2020", f"/api/compare?a={copy.run_a}&b={copy.run_b}"]
        urls += ["/api/evals", f"/api/evals/{copy.eval_id}"]
        for url in urls:
            answer = client.get(url)
            assert answer.status_code in (200, 404, 422), (url, answer.text)
        assert client.get(f"/api/runs/{copy.run_b}").status_code == 200


def check_cache(copy: Pristine) -> None:
    """A run with the damaged cache completes (a damaged entry is a miss), `cache stats` and `cache clear`
    answer, and after the clear the cache works again."""
    command = ["run", str(copy.project / "review.yaml"), "--model", "scripted:good.yaml", "--quiet", "--cache"]
    check(cli(copy.home, *command), ["run"], (0,))
    check(cli(copy.home, "cache", "stats"), ["cache", "stats"], (0,))
    check(cli(copy.home, "cache", "clear"), ["cache", "clear"], (0,))
    check(cli(copy.home, *command), ["run"], (0,))
    stats = cli(copy.home, "cache", "stats", "--json")
    assert stats.exit_code == 0 and json.loads(stats.stdout)["entries"] == 3, stats.output


def check_b(copy: Pristine) -> None:
    """Run B is listed as completed and its trace reads, whatever happened to A."""
    listed = cli(copy.home, "runs", "--json")
    assert listed.exit_code == 0, listed.output
    statuses = {r["run_id"]: r["status"] for r in json.loads(listed.stdout)}
    assert statuses[copy.run_b] == "completed", statuses
    STATS[f"runs lists A as {statuses.get(copy.run_a)}"] += 1
    for command in (["trace", copy.run_b], ["trace", "export", copy.run_b]):
        shown = cli(copy.home, *command)
        assert shown.exit_code == 0, (command, shown.output)


def exercise(pristine: Pristine, which: str, draw: st.DrawFn) -> None:
    """Damage one file of a copy of the pristine home, then run every reader over it."""
    with tempfile.TemporaryDirectory(prefix="rolegraph-damaged-") as tmp:
        root = Path(tmp)
        copy = Pristine(root / "project", root / "home", pristine.run_a, pristine.run_b, pristine.eval_id)
        shutil.copytree(pristine.project, copy.project)
        shutil.copytree(pristine.home, copy.home)
        if which != "script":  # the runs and the eval name the pristine project's files: point them at the copy
            _repoint(copy, pristine.project)
        STATS[f"{which} {damage(target(copy, which), which, draw)}"] += 1
        a, b, home = copy.run_a, copy.run_b, copy.home
        reads = [["runs"], ["runs", "--json"], ["trace", a], ["trace", a, "--json", "--usage"]]
        reads += [["trace", "export", a], ["trace", "diff", a, b], ["trace", "diff", b, a]]
        for command in reads:
            check(cli(home, *command), command, (0, 2))
        check_viewer(copy)
        for command in (["resume", a, "--quiet"], ["replay", a], ["eval", "--resume", copy.eval_id]):
            check(cli(home, *command), command, (0, 1, 2))
        if which == "script":
            command = ["run", str(copy.project / "review.yaml"), "--model", "scripted:good.yaml", "--quiet"]
            check(cli(home, *command), ["run"], (0, 1, 2))
        if which == "cache":
            check_cache(copy)
        check_b(copy)


def _repoint(copy: Pristine, original: Path) -> None:
    """Make the copy's run stores, summaries and manifest name the copied project (absolute paths)."""
    for path in [*copy.home.rglob("run.json"), *copy.home.rglob("manifest.json")]:
        path.write_text(path.read_text().replace(str(original), str(copy.project)))
    for store in copy.home.rglob("run.sqlite"):
        with sqlite3.connect(store) as db:
            db.execute("UPDATE run SET record = replace(record, ?, ?)", (str(original), str(copy.project)))
        db.close()


# --- the suites ------------------------------------------------------------------------------------------------

FAST = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SLOW = settings(FAST, max_examples=SLOW_EXAMPLES, derandomize=not SLOW_FRESH)


class TestDamagedFiles:
    @pytest.mark.parametrize("which", FILES)
    @FAST
    @given(data=st.data())
    def test_a_damaged_file_breaks_nothing_else(self, which: str, pristine: Pristine, data: st.DataObject) -> None:
        """One file damaged (cut, bits flipped, a value of another type): no traceback from any reader, exit 2 in
        one line for the damaged item, and the other run listed and readable by the CLI and the viewer."""
        exercise(pristine, which, data.draw)

    def test_the_readme_states_the_sample(self) -> None:
        """The README's Reliability section gives this suite's sample sizes as they are."""
        readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
        assert f"{EXAMPLES} damaged copies per file ({EXAMPLES * len(FILES)} in all" in readme
        assert f"the `slow` lane checks {SLOW_DEFAULT} per file, also a fixed sample" in readme
        assert "`ROLEGRAPH_FUZZ_FRESH=1` draws fresh damage" in readme


@pytest.mark.slow
class TestDamagedFilesAtLength:
    @pytest.mark.parametrize("which", FILES)
    @SLOW
    @given(data=st.data())
    def test_a_damaged_file_breaks_nothing_else(self, which: str, pristine: Pristine, data: st.DataObject) -> None:
        """As the fast lane, with many more examples per file (fresh ones under ``ROLEGRAPH_FUZZ_FRESH=1``)."""
        exercise(pristine, which, data.draw)
