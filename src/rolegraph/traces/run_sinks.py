"""The sinks every run writes its trace to: its JSONL file, the live index, and OTLP when configured."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rolegraph.layout import Home, RunFolder
from rolegraph.traces._rows import RunEnd
from rolegraph.traces.export import OTLP_ENDPOINT_VARS
from rolegraph.traces.index_writer import index_writer
from rolegraph.traces.sinks import JsonlSink, TraceSink

if TYPE_CHECKING:
    from rolegraph.traces.otel import OtlpSink


__all__ = ["RunEnd", "RunSinks"]


class RunSinks:
    """A run's own trace sinks, opened together when its folder exists and closed together at its end.

    - ``trace.jsonl`` in the run folder: the source of truth (`JsonlSink`: every finished span on disk).
    - The live index, ``index.sqlite`` in the home folder: the run's `RunIndex` on the home's one
      long-lived writer, so ``rolegraph runs`` shows the run, and its open spans, while it runs.
    - OTLP export (`OtlpSink`), when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    Args:
        home: The rolegraph home (holds ``index.sqlite``).
        run_dir: The run's folder.
        run_id: The run's id.
        workflow: The workflow's name (an OTLP resource attribute).
    """

    def __init__(self, home: Path, run_dir: Path, run_id: str, workflow: str) -> None:
        self.jsonl = JsonlSink(RunFolder(run_dir).trace)
        self.index = index_writer(Home(home).index).open_run(run_dir)
        self.otlp = _otlp_sink(run_id, workflow)

    def __iter__(self) -> Iterator[TraceSink]:
        yield self.jsonl
        yield self.index
        if self.otlp is not None:
            yield self.otlp

    async def close(self, end: RunEnd) -> None:
        """Close the file, hand the run's end to the index writer (which completes the run's row within its
        interval: `RunIndex.finish`, which reads the files' stamp), then flush OTLP within its bound (in a
        worker thread: it waits on the network).

        Call it once the run's summary (``run.json``) is written: the index row records that file's stamp.
        """
        self.jsonl.close()
        self.index.finish(end)
        if self.otlp is not None:
            await asyncio.to_thread(self.otlp.close)


def _otlp_sink(run_id: str, workflow: str) -> OtlpSink | None:
    if not any(os.environ.get(name) for name in OTLP_ENDPOINT_VARS):
        return None
    # Imported only when export is configured: the SDK and its exporter are a noticeable part of start-up.
    from rolegraph.traces.otel import OtlpSink

    try:
        return OtlpSink.from_env(run_id, {"rolegraph.workflow": workflow})
    except Exception:  # a misconfigured exporter must not fail the run: the JSONL file has the trace
        return None
