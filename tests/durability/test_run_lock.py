"""The run's lock: one process at a time works on a run, and taking the lock creates no file."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import sys
from pathlib import Path

import pytest

import rolegraph
from durable_projects import run_in_process, touch, wait_until_exists, write_waiting_project
from rolegraph.durability import durable
from rolegraph.durability.resume import resume
from rolegraph.errors import ResumeError
from rolegraph.layout import LOCK_FILE

pytestmark = [
    pytest.mark.usefixtures("home"),
    pytest.mark.skipif(sys.platform == "win32", reason="no flock: the one-process-per-run rule is the user's"),
]


async def started_run(tmp_path: Path, marks: Path) -> Path:
    """The folder of the waiting project's run, once its waiting step has started."""
    await asyncio.to_thread(wait_until_exists, marks / "started")
    (run_dir,) = (tmp_path / "home" / "runs").iterdir()
    return run_dir


class TestRunLock:
    async def test_a_run_in_another_process_cannot_be_resumed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """While another process works on a run, resuming it is refused; the lock left no file in the folder."""
        marks = tmp_path / "marks"
        marks.mkdir()
        path = write_waiting_project(tmp_path / "project")
        env = {**os.environ, "ROLEGRAPH_HOME": str(tmp_path / "home"), "DURABLE_TEST_DIR": str(marks)}
        process = asyncio.create_task(run_in_process(path, env))
        try:
            run_dir = await started_run(tmp_path, marks)
            with pytest.raises(ResumeError, match="being worked on by another process"):
                await resume(run_dir)
            assert not (run_dir / LOCK_FILE).exists()
        finally:
            touch(marks / "release")
            finished = await process
        assert finished.returncode == 0, finished.stderr
        assert (await resume(run_dir)).status == "completed"  # the lock died with its process

    async def test_a_folder_that_cannot_be_locked_is_locked_by_a_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Where a directory cannot be locked (NFS answers EBADF), the run holds a run.lock file instead, and a
        second worker is still refused."""
        real_flock = durable.fcntl.flock

        def nfs_flock(fd: int, operation: int) -> None:
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                raise OSError(errno.EBADF, "Bad file descriptor")
            real_flock(fd, operation)

        monkeypatch.setattr(durable.fcntl, "flock", nfs_flock)
        marks = tmp_path / "marks"
        marks.mkdir()
        monkeypatch.setenv("DURABLE_TEST_DIR", str(marks))
        task = asyncio.create_task(rolegraph.load(write_waiting_project(tmp_path / "project")).run())
        try:
            run_dir = await started_run(tmp_path, marks)
            assert (run_dir / LOCK_FILE).is_file()
            with pytest.raises(ResumeError, match="being worked on by another process"):
                await resume(run_dir)
        finally:
            touch(marks / "release")
            result = await task
        assert result.status == "completed"

    async def test_a_folder_with_an_older_lock_file_resumes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run folder an older rolegraph made (with its run.lock file) resumes as any other."""
        marks = tmp_path / "marks"
        marks.mkdir()
        monkeypatch.setenv("DURABLE_TEST_DIR", str(marks))
        task = asyncio.create_task(rolegraph.load(write_waiting_project(tmp_path / "project")).run())
        run_dir = await started_run(tmp_path, marks)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (run_dir / LOCK_FILE).touch()
        touch(marks / "release")
        assert (await resume(run_dir)).status == "completed"
