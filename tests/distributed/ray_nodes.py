"""What a Ray cluster's processes listen on, as ``ss -ltnp`` shows it."""

from __future__ import annotations

import re
import subprocess

from rolegraph.distributed.local_nodes import descendants

__all__ = ["descendants", "listeners", "off_loopback"]


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
    """The listeners of `pids` reachable from another machine (any address but 127.0.0.0/8 and ::1)."""
    return [(address, pid) for address, pid in listeners(pids) if not _loopback(address.rsplit(":", 1)[0])]


def _loopback(host: str) -> bool:
    host = host.strip("[]").removeprefix("::ffff:")
    return host.startswith("127.") or host == "::1"
