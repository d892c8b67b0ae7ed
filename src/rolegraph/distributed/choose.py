"""Choosing a run's executor by name: ``local`` (this process), ``ray`` or ``ray://host:port``.

Ray is imported only when a Ray executor is chosen, so rolegraph without the
``ray`` extra runs as before, and asking for Ray without it says how to install it.
"""

from __future__ import annotations

from rolegraph.distributed.cluster import executor_address, require_ray
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor

__all__ = ["executor_for"]


def executor_for(name: str | None) -> ExecutorFactory:
    """The executor factory `name` names (None or ``local``: in this process).

    Raises:
        ValueError: `name` names no executor.
        RayNotInstalled: A Ray executor is asked for and Ray is not installed.
    """
    if name is None or name == "local":
        return LocalExecutor.for_run
    address = executor_address(name)
    require_ray()
    from rolegraph.distributed.ray_executor import RayExecutor

    return RayExecutor.factory(address)
