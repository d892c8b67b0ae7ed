"""The run-folder layout: every path under ROLEGRAPH_HOME named once; run ids checked before they touch a path."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from rolegraph.layout import Home, RunFolder, home_dir, is_run_id, new_run_id, write_replacing


class TestRunIds:
    def test_new_ids_have_the_run_id_shape(self) -> None:
        """A fresh id is accepted by `is_run_id`, and two fresh ids differ."""
        first, second = new_run_id(), new_run_id()
        assert is_run_id(first) and is_run_id(second) and first != second

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
    def test_a_forked_child_does_not_repeat_its_parents_ids(self) -> None:
        """A forked process (a worker pool's) draws other ids than its parent's next ones."""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its next id, to the parent
            os.write(write, new_run_id().encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        child = os.read(read, 100).decode()
        os.close(read)
        assert is_run_id(child) and child[-12:] != new_run_id()[-12:]

    def test_a_programs_seed_does_not_repeat_ids(self) -> None:
        """Seeding `random` (as a reproducible experiment does) leaves run ids fresh."""
        random.seed(7)
        first = new_run_id()
        random.seed(7)
        assert first != new_run_id()

    @pytest.mark.parametrize("bad", ["../../../x", "20261206-120000-abc/../..", "", "last", "/etc", "a" * 300])
    def test_paths_and_junk_are_not_run_ids(self, bad: str) -> None:
        """Anything that could name a path outside the runs folder is refused."""
        assert not is_run_id(bad)
        with pytest.raises(ValueError, match="not a run id"):
            Home(Path("/tmp/home")).run(bad)


class TestHome:
    def test_paths(self, tmp_path: Path) -> None:
        """The home's folders and files, and a run's folder under ``runs/``."""
        home = Home(tmp_path)
        run = home.run("20261206-120000-0123456789ab")
        assert (home.runs, home.evals, home.index, home.prices) == (
            tmp_path / "runs",
            tmp_path / "evals",
            tmp_path / "index.sqlite",
            tmp_path / "prices.yaml",
        )
        assert run.path == (tmp_path / "runs" / "20261206-120000-0123456789ab").absolute()

    def test_home_from_the_environment(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """``$ROLEGRAPH_HOME`` wins; ``./.rolegraph`` otherwise."""
        monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path))
        assert Home.from_env().path == home_dir() == tmp_path
        monkeypatch.delenv("ROLEGRAPH_HOME")
        assert home_dir() == Path(".rolegraph")


class TestRunFolder:
    def test_files(self, tmp_path: Path) -> None:
        """Each file of a run folder, by the name the README documents."""
        folder = RunFolder(tmp_path)
        names = [p.name for p in (folder.trace, folder.summary, folder.sources, folder.store, folder.lock)]
        assert names == ["trace.jsonl", "run.json", "sources.jsonl", "run.sqlite", "run.lock"]
        assert folder.step_log == tmp_path / "steps.jsonl"
        assert folder.step_file("plan") == tmp_path / "steps" / "plan.json"  # the older layout, still read

    def test_step_states_are_each_steps_last_line(self, tmp_path: Path) -> None:
        """``steps.jsonl``: a step's last line wins; a torn, undecodable or non-state line is skipped (the step
        reads as its line before, or as missing); no file reads as no states."""
        folder = RunFolder(tmp_path)
        assert folder.step_states() == {}
        lines = [
            '{"step_id": "a", "output": 1}',
            '{"step_id": "b", "output": 2}',
            "[1, 2]",
            '{"output": "no step"}',
            '{"step_id": 7}',
            b"\xff\xfe".decode("latin-1"),
            '{"step_id": "a", "output": 3}',
            '{"step_id": "b", "outp',  # a kill mid-write
        ]
        folder.step_log.write_text("\n".join(lines), encoding="latin-1")
        assert folder.step_states() == {"a": {"step_id": "a", "output": 3}, "b": {"step_id": "b", "output": 2}}

    def test_an_older_run_folders_step_files_are_read(self, tmp_path: Path) -> None:
        """Without ``steps.jsonl``, the older ``steps/<step_id>.json`` files are read, a damaged one skipped; with
        it, they are not (a resume of an older run appends its restored steps to the new file)."""
        folder = RunFolder(tmp_path)
        folder.steps.mkdir()
        folder.step_file("plan").write_text('{"step_id": "plan", "output": {"n": 1}}')
        folder.step_file("torn").write_text('{"step_id": "to')
        folder.step_file("list").write_text("[]")
        assert folder.step_states() == {"plan": {"step_id": "plan", "output": {"n": 1}}}
        folder.step_log.write_text('{"step_id": "write", "output": 2}\n')
        assert folder.step_states() == {"write": {"step_id": "write", "output": 2}}

    def test_read_summary_never_raises(self, tmp_path: Path) -> None:
        """A missing, undecodable or non-object run.json reads as {}; a good one as its object."""
        folder = RunFolder(tmp_path)
        assert folder.read_summary() == {}
        folder.summary.write_bytes(b"\xff\xfe not json")
        assert folder.read_summary() == {}
        folder.summary.write_text("[1, 2]")
        assert folder.read_summary() == {}
        folder.summary.write_text('{"run_id": "x"}')
        assert folder.read_summary() == {"run_id": "x"}

    def test_stamp_changes_with_the_files(self, tmp_path: Path) -> None:
        """The stamp of named files changes when one of them is written, and marks missing ones."""
        folder = RunFolder(tmp_path)
        empty = folder.stamp("trace.jsonl", "run.json")
        assert empty == "-/-"
        folder.trace.write_text("{}\n")
        assert folder.stamp("trace.jsonl", "run.json") != empty
        assert folder.has_run_files()


class TestWriteReplacing:
    def test_the_file_holds_exactly_the_last_data_written(self, tmp_path: Path) -> None:
        """A new file is created, an existing one replaced by shorter data (nothing of the old is left), bytes
        that are not text and newlines kept as they are, and no temporary file is left beside it."""
        path = tmp_path / "run.json"
        write_replacing(path, b'{"status": "running", "padding": "' + b"x" * 100_000 + b'"}\r\n')
        write_replacing(path, b"\x00\xff{}\n")
        assert path.read_bytes() == b"\x00\xff{}\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]

    def test_a_failed_write_leaves_the_old_file_whole(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A write that fails (the disk is full) raises and leaves the previous content in place."""
        path = tmp_path / "run.json"
        write_replacing(path, b"old\n")

        def full(fd: int, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(OSError, match="No space"):
            write_replacing(path, b"new\n")
        assert path.read_bytes() == b"old\n"

    def test_a_short_write_is_continued(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the system writes only part of the data at a time, the rest is written after it."""
        real = os.write
        monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:3])))
        path = tmp_path / "sources.jsonl"
        write_replacing(path, b'{"a": 1}\n{"b": 2}\n')
        assert path.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
