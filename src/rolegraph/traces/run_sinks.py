"""The sinks every run writes its trace to: its JSONL file, the live index, and OTLP when configured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rolegraph.layout import Home, RunFolder
from rolegraph.traces.export import OTLP_ENDPOINT_VARS
from rolegraph.traces.sinks import JsonlSink, TraceSink
from rolegraph.traces.store_sink import StoreSink

if TYPE_CHECKING:
    from rolegraph.traces.otel import OtlpSink


__all__ = ["RunSinks"]


class RunSinks:
    """A run's own trace sinks, opened together when its folder exists and closed together at its end.

    - ``trace.jsonl`` in the run folder: the source of truth, flushed per record.
    - The live index, ``index.sqlite`` in the home folder (`StoreSink`): written from its
      own thread, so ``rolegraph runs`` shows the run, and its open spans, while it runs.
    - OTLP export (`OtlpSink`), when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    Args:
        home: The rolegraph home (holds ``index.sqlite``).
        run_dir: The run's folder.
        run_id: The run's id.
        workflow: The workflow's name (an OTLP resource attribute).
    """

    def __init__(self, home: Path, run_dir: Path, run_id: str, workflow: str) -> None:
        self.jsonl = JsonlSink(RunFolder(run_dir).trace)
        self.index = StoreSink(Home(home).index, run_dir=run_dir)
        self.otlp = _otlp_sink(run_id, workflow)

    def __iter__(self) -> Iterator[TraceSink]:
        yield self.jsonl
        yield self.index
        if self.otlp is not None:
            yield self.otlp

    def close(self) -> None:
        """Close the file, write what the index has queued, flush OTLP within its bound (blocks: use a thread)."""
        self.jsonl.close()
        self.index.close()
        if self.otlp is not None:
            self.otlp.close()


def _otlp_sink(run_id: str, workflow: str) -> OtlpSink | None:
    if not any(os.environ.get(name) for name in OTLP_ENDPOINT_VARS):
        return None
    # Imported only when export is configured: the SDK and its exporter are a noticeable part of start-up.
    from rolegraph.traces.otel import OtlpSink

    try:
        return OtlpSink.from_env(run_id, {"rolegraph.workflow": workflow})
    except Exception:  # a misconfigured exporter must not fail the run: the JSONL file has the trace
        return None
