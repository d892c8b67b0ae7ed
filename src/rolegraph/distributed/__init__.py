"""Running steps past one process: the Ray executor (`pip install 'rolegraph[ray]'`)."""

from __future__ import annotations

from rolegraph.distributed.choose import executor_for

__all__ = ["executor_for"]
