"""A two-node Ray cluster on 127.0.0.1 for the tests, and what its processes listen on.

Run as a script it starts a head node and a worker node (one CPU each, no dashboard, no
usage statistics), prints ``{"address", "worker"}`` as one JSON line, and then obeys
its standard input: ``kill-worker`` kills the worker node's processes at once (a lost
machine); end of input stops the cluster. `TwoNodes` drives it from a test; its
`stop` ends the script's whole process group, whatever state the test left.

Why not ``ray start``: Ray's servers listen on 127.0.0.1 alone only when their node's
address is 127.0.0.1, and Ray's command line maps 127.0.0.1 to the machine's own address
unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` — with which ``ray start --address``
refuses to start a second node. Ray's own test cluster (`ray.cluster_utils.Cluster`)
starts nodes with the address given, so both nodes here listen on loopback only.
Nor ``ray stop --force``: it stops every Ray process of the machine, other users'
clusters included; this cluster is stopped by its own process group.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from rolegraph.distributed.cluster import LONE_MACHINE


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


def listeners(pids: set[int]) -> list[tuple[str, int]]:
    """The TCP addresses processes in `pids` listen on, as ``ss -ltnp`` shows them: (address:port, pid)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        for pid in (int(p) for p in re.findall(r"pid=(\d+)", line)):
            if pid in pids:
                found.append((fields[3], pid))
    return found


def off_loopback(pids: set[int]) -> list[tuple[str, int]]:
    """The listeners of `pids` reachable from another machine (any address but 127.0.0.0/8)."""
    return [(address, pid) for address, pid in listeners(pids) if not _loopback(address.rsplit(":", 1)[0])]


def _loopback(host: str) -> bool:
    host = host.strip("[]").removeprefix("::ffff:")
    return host.startswith("127.") or host == "::1"


class TwoNodes:
    """The script below in a subprocess: a head and a worker node on 127.0.0.1."""

    def __init__(self, temp_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(temp_dir)],
            env={**os.environ, **LONE_MACHINE},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(temp_dir / "cluster.log").open("w"),
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the cluster did not start: see {temp_dir / 'cluster.log'}")
        started = json.loads(line)
        self.address: str = started["address"]
        self.worker: str = started["worker"]
        """The worker node's id."""

    def env(self) -> dict[str, str]:
        """The environment of a driver joining this cluster."""
        return {**LONE_MACHINE, "RAY_ADDRESS": self.address}

    def pids(self) -> set[int]:
        """The cluster's processes."""
        return descendants(self.process.pid)

    def kill_worker(self) -> None:
        """Kill the worker node's processes at once, as if its machine were lost."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("kill-worker\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "killed"

    def stop(self) -> None:
        """Stop both nodes: end of input, then the whole process group."""
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


def _serve(temp_dir: str) -> None:
    from ray.cluster_utils import Cluster

    node = {"node_ip_address": "127.0.0.1", "num_cpus": 1, "temp_dir": temp_dir}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        worker = cluster.add_node(**node)
        print(json.dumps({"address": cluster.address, "worker": worker.node_id}), flush=True)
        for command in sys.stdin:
            if command.strip() == "kill-worker":
                cluster.remove_node(worker, allow_graceful=False)
                print("killed", flush=True)
    finally:
        started = time.monotonic()
        cluster.shutdown()
        print(f"stopped in {time.monotonic() - started:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    _serve(sys.argv[1])
