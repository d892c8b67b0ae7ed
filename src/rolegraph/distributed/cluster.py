"""Joining a Ray cluster, or starting a local one, with every port on 127.0.0.1.

Ray's cluster has no authentication: whoever reaches its ports can run code on
every node. A local cluster started here therefore binds to the loopback address
only, runs no dashboard and sends no usage statistics. Joining an existing
cluster (an address, or ``RAY_ADDRESS``) keeps that cluster's own settings.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["INSTALL_HINT", "RayNotInstalled", "connect", "require_ray"]

INSTALL_HINT = "the Ray executor needs Ray: pip install 'rolegraph[ray]'"


class RayNotInstalled(ImportError):
    """Ray is not installed; the message says how to install it."""


def require_ray() -> Any:
    """The `ray` module.

    Raises:
        RayNotInstalled: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise RayNotInstalled(INSTALL_HINT) from None
    return ray


def local_cluster_options() -> dict[str, Any]:
    """`ray.init` options of a local, loopback-only cluster: no dashboard, no usage statistics."""
    return {
        "include_dashboard": False,
        "configure_logging": False,
        "log_to_driver": False,
    }


def connect(address: str | None = None) -> None:
    """Connect this process to Ray once: to `address`, else to ``RAY_ADDRESS``, else to a new local cluster.

    Raises:
        RayNotInstalled: Ray is not installed.
    """
    ray = require_ray()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    target = address or os.environ.get("RAY_ADDRESS")
    if target and target != "local":
        ray.init(address=target, namespace="rolegraph", log_to_driver=False, configure_logging=False)
        return
    # Ray maps 127.0.0.1 to the machine's own address unless told the machine is a lone one
    # (read by this process's Ray now, and by the processes it starts from the environment).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(namespace="rolegraph", **local_cluster_options())


def executor_address(name: str) -> str | None:
    """The cluster address an ``--executor`` value names: ``ray`` (RAY_ADDRESS or a local cluster)
    or ``ray://host:port``; None for ``ray``.

    Raises:
        ValueError: The value names no executor.
    """
    if name == "ray":
        return None
    if name.startswith("ray://"):
        return name
    raise ValueError(f"unknown executor {name!r}: use local, ray or ray://host:port")
