"""Choosing a run's executor by name: ``local`` (this process), ``ray`` or ``ray://host:port``.

Ray is imported only when a Ray executor is chosen, so rolegraph without the
``ray`` extra runs as before, and asking for Ray without it says how to install it.
"""

from __future__ import annotations

from rolegraph.distributed.cluster import executor_address, prepare
from rolegraph.runtime.executor import ExecutorFactory, LocalExecutor
from rolegraph.workflows.spec import check_executor

__all__ = ["executor_for"]


def executor_for(name: str | None) -> ExecutorFactory:
    """The executor factory `name` names (None or ``local``: in this process).

    Raises:
        ValueError: `name` names no executor.
        RayNotInstalled: A Ray executor is asked for and Ray is not installed.
    """
    if name is None or check_executor(name) == "local":
        return LocalExecutor.for_run
    address = executor_address(name)
    prepare(address)  # before Ray is first imported: a new local cluster then stays on 127.0.0.1
    from rolegraph.distributed.ray_executor import RayExecutor

    return RayExecutor.factory(address)
