"""A Ray cluster of a few nodes on this machine's loopback address, for tests and benchmarks.

```python
nodes = LocalNodes(Path("/tmp/rg-ray"), count=2)        # a head and a worker node, one CPU each
env = nodes.env()                                       # RAY_ADDRESS for a driver (a `rolegraph` process)
nodes.kill_worker()                                     # a lost machine
nodes.stop()
```

Run as a script (``python -m rolegraph.distributed.local_nodes FOLDER COUNT``) it starts a head
node and ``COUNT - 1`` worker nodes (one CPU each, no dashboard, no usage statistics), prints
``{"address", "workers"}`` as one JSON line, and then obeys its standard input:
``kill-worker`` kills the last worker node's processes at once; end of input stops the cluster.
`LocalNodes` drives it from another process; `stop` ends the script's whole process group,
whatever state it is in.

Why not ``ray start``: Ray's servers listen on 127.0.0.1 alone only when their node's address
is 127.0.0.1, and Ray's command line maps 127.0.0.1 to the machine's own address unless
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` — with which ``ray start --address`` refuses to start a
second node. Ray's own test cluster (`ray.cluster_utils.Cluster`) starts nodes with the address
given, so every node here listens on loopback only. Nor ``ray stop --force``: it stops every Ray
process of the machine, other users' clusters included; these nodes are stopped by their own
process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from rolegraph.distributed.cluster import LONE_MACHINE

__all__ = ["DEFAULT_START_TIMEOUT_S", "START_TIMEOUT_VAR", "LocalNodes", "start_timeout"]

START_TIMEOUT_VAR = "ROLEGRAPH_RAY_START_TIMEOUT"
DEFAULT_START_TIMEOUT_S = 300.0
"""How long the nodes of a `LocalNodes` cluster may take to register (Ray's own test cluster waits 30 s)."""


class LocalNodes:
    """The script above in a subprocess: a head node and ``count - 1`` worker nodes on 127.0.0.1.

    Raises:
        RuntimeError: The cluster did not start (its log is named).
    """

    def __init__(self, temp_dir: Path, *, count: int = 2) -> None:
        self._log: IO[str] = (temp_dir / "cluster.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rolegraph.distributed.local_nodes", str(temp_dir), str(count)],
            env={**os.environ, **LONE_MACHINE},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            log = temp_dir / "cluster.log"
            last = [row for row in log.read_text(errors="replace").splitlines() if row.strip()][-1:]
            raise RuntimeError(f"the cluster did not start: {''.join(last) or 'no error recorded'} (log: {log})")
        started = json.loads(line)
        self.address: str = started["address"]
        self.head: str = started["head"]
        """The head node's id."""
        self.workers: list[str] = started["workers"]
        """The worker nodes' ids."""

    def env(self) -> dict[str, str]:
        """The environment of a driver joining this cluster (rolegraph sets the rest)."""
        return {"RAY_ADDRESS": self.address}

    def pids(self) -> set[int]:
        """The cluster's processes (from /proc)."""
        return descendants(self.process.pid)

    def kill_worker(self) -> None:
        """Kill the last worker node's processes at once, as if its machine were lost."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("kill-worker\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "killed":
            raise RuntimeError("the worker node was not killed")

    def stop(self) -> None:
        """Stop every node: end of input, then the whole process group."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        for stream in (self.process.stdout, self._log):
            if stream is not None:
                stream.close()


def descendants(pid: int) -> set[int]:
    """`pid` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def start_timeout() -> float:
    """How long a cluster's nodes may take to register: ``ROLEGRAPH_RAY_START_TIMEOUT`` seconds, else 300.

    Raises:
        ValueError: The variable is not a positive number.
    """
    raw = os.environ.get(START_TIMEOUT_VAR, "")
    try:
        seconds = float(raw) if raw else DEFAULT_START_TIMEOUT_S
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ValueError(f"{START_TIMEOUT_VAR}={raw!r}: give a positive number of seconds")
    return seconds


def _serve(temp_dir: str, count: int) -> None:
    from ray.cluster_utils import Cluster

    timeout = start_timeout()
    node = {"node_ip_address": "127.0.0.1", "num_cpus": 1, "temp_dir": temp_dir}
    # Ray's own wait for a node is a fixed 30 s (`Cluster.add_node(wait=True)`); a loaded machine needs longer.
    cluster = Cluster(initialize_head=False)
    try:
        head = cluster.add_node(wait=False, **node, include_dashboard=False)
        workers = [cluster.add_node(wait=False, **node) for _ in range(count - 1)]
        try:
            cluster.wait_for_nodes(timeout=timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the local Ray cluster's {count} nodes did not all register with its head within {timeout:.0f} s"
                f" (load average {os.getloadavg()[0]:.1f}); set {START_TIMEOUT_VAR} to wait longer"
            ) from None
        started = {"address": cluster.address, "head": head.node_id, "workers": [w.node_id for w in workers]}
        print(json.dumps(started), flush=True)
        for command in sys.stdin:
            if command.strip() == "kill-worker" and workers:
                cluster.remove_node(workers.pop(), allow_graceful=False)
                print("killed", flush=True)
    finally:
        begun = time.monotonic()
        cluster.shutdown()
        print(f"stopped in {time.monotonic() - begun:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
