"""Joining a Ray cluster, or starting a local one, with every port on 127.0.0.1.

Ray's cluster has no user accounts: whoever reaches its ports (and, from Ray 2.5x,
holds its token) can run code on every node. A local cluster started here therefore
listens on the loopback address only, runs no dashboard and sends no usage
statistics. Joining an existing cluster (an address, or ``RAY_ADDRESS``) keeps that
cluster's own settings.

How the loopback binding is had, with Ray's own settings and nothing patched: Ray's
servers listen on 127.0.0.1 alone when their node's address is 127.0.0.1, and
Ray takes 127.0.0.1 for the machine's own address unless the environment says the
machine is a lone one (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when Ray is
imported, and by every process Ray starts). `prepare` sets it before Ray is
imported; a process that imported Ray earlier without it gets a clear error rather
than a cluster on every interface.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from rolegraph.workflows.spec import check_executor

__all__ = ["INSTALL_HINT", "LONE_MACHINE", "RayNotInstalled", "connect", "executor_address", "prepare", "require_ray"]

INSTALL_HINT = "the Ray executor needs Ray: pip install 'rolegraph[ray]'"

LONE_MACHINE = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A busy machine starts Ray's agents and workers slowly; Ray's defaults (30 s, 60 s) then kill the node.
    "RAY_agent_register_timeout_ms": "180000",
    "RAY_worker_register_timeout_seconds": "180",
}
"""The environment of a Ray that stays on this machine: nodes on 127.0.0.1, no usage statistics, and
patience with a loaded machine (each set only where the environment does not already say)."""


class RayNotInstalled(ImportError):
    """Ray is not installed; the message says how to install it."""


def require_ray() -> None:
    """Check that Ray is installed, without importing it (importing it fixes how it binds).

    Raises:
        RayNotInstalled: Ray is not installed.
    """
    if sys.modules.get("ray", False) is None or importlib.util.find_spec("ray") is None:
        raise RayNotInstalled(INSTALL_HINT)


def prepare(address: str | None = None) -> str | None:
    """Ready this process's environment for Ray before Ray is imported; the cluster to join (None: a new
    local one, which then stays on 127.0.0.1; one at 127.0.0.1 is reached there too).

    Raises:
        RayNotInstalled: Ray is not installed.
    """
    require_ray()
    target = address or os.environ.get("RAY_ADDRESS")
    if target == "local":
        target = None
    if (target is None or _on_loopback(target)) and "ray" not in sys.modules:
        for name, value in LONE_MACHINE.items():
            os.environ.setdefault(name, value)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Under `uv run`, Ray would otherwise ship the working folder to every worker and start each through
    # `uv run` again; rolegraph's workers use the package each node has installed.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    return target


def _on_loopback(address: str) -> bool:
    """Whether a cluster address is on this machine's loopback (a cluster started with
    ``--node-ip-address 127.0.0.1``), which Ray reaches only as a lone machine."""
    host = address.removeprefix("ray://").rsplit(":", 1)[0]
    return host in ("127.0.0.1", "localhost")


def connect(address: str | None = None) -> None:
    """Connect this process to Ray once: to `address`, else to ``RAY_ADDRESS``, else to a new local cluster.

    Raises:
        RayNotInstalled: Ray is not installed.
        RuntimeError: A local cluster is asked for, but Ray was imported before without
            ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` and would listen on every interface.
    """
    target = prepare(address)
    import ray
    from ray.util import get_node_ip_address

    if ray.is_initialized():
        return
    if target is not None:
        ray.init(address=target, namespace="rolegraph", log_to_driver=False, configure_logging=False)
        return
    if get_node_ip_address() != "127.0.0.1":
        raise RuntimeError(
            "Ray was imported before rolegraph could keep a local cluster on 127.0.0.1; set"
            " RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray, or start Ray yourself (ray.init)"
        )
    # "local": a new cluster of this process's own; Ray's default would join the machine's latest one.
    ray.init(address="local", namespace="rolegraph", **local_cluster_options())


def local_cluster_options() -> dict[str, Any]:
    """`ray.init` options of a local cluster: no dashboard, no logs copied to this terminal."""
    return {"include_dashboard": False, "configure_logging": False, "log_to_driver": False}


def executor_address(name: str) -> str | None:
    """The cluster address an executor name gives: None for ``ray`` (``RAY_ADDRESS``, or a local
    cluster), the address itself for ``ray://host:port``.

    Raises:
        ValueError: The name names no executor, or names ``local``.
    """
    check_executor(name)
    if name == "local":
        raise ValueError("the local executor runs in this process: it has no cluster address")
    return None if name == "ray" else name
