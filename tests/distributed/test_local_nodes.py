"""Starting a local cluster on a loaded machine: how long its nodes may take, and what a timeout says."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from rolegraph.distributed.local_nodes import DEFAULT_START_TIMEOUT_S, START_TIMEOUT_VAR, LocalNodes, start_timeout


def using(folder: Path) -> list[int]:
    """The processes whose command line names `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class TestStartTimeout:
    def test_the_wait_is_configurable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Unset: 300 s (Ray's own test cluster waits 30); set: its seconds."""
        monkeypatch.delenv(START_TIMEOUT_VAR, raising=False)
        assert start_timeout() == DEFAULT_START_TIMEOUT_S == 300
        monkeypatch.setenv(START_TIMEOUT_VAR, "12.5")
        assert start_timeout() == 12.5

    @pytest.mark.parametrize("value", ["soon", "0", "-3"])
    def test_a_bad_wait_is_named(self, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        """A value that is not a positive number is refused, naming the variable and the value."""
        monkeypatch.setenv(START_TIMEOUT_VAR, value)
        with pytest.raises(ValueError, match=rf"{START_TIMEOUT_VAR}='{value}': give a positive number"):
            start_timeout()

    def test_nodes_not_registered_in_time_fail_clearly_and_leave_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A wait too short for the nodes to register: `LocalNodes` raises an error naming the nodes, the wait,
        the load average and the variable to raise it with, and none of the cluster's processes is left."""
        monkeypatch.setenv(START_TIMEOUT_VAR, "0.000000001")
        folder = Path(tempfile.mkdtemp(prefix="rg-ray-", dir="/tmp"))
        try:
            with pytest.raises(RuntimeError) as raised:
                LocalNodes(folder, count=2)
            message = str(raised.value)
            assert "the local Ray cluster's 2 nodes did not all register with its head within 0 s" in message
            assert "load average" in message and f"set {START_TIMEOUT_VAR} to wait longer" in message
            assert str(folder / "cluster.log") in message
            assert using(folder) == []  # every process of the cluster (each names its temp folder) is gone
        finally:
            shutil.rmtree(folder, ignore_errors=True)
