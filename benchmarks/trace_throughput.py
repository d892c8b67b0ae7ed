"""Scenario 5, trace throughput: spans written per second and bytes per span, per sink.

Each span looks like a model call's: a model name, a few numbers, a 200-character
text and a short list. A span is two records (start and end). Bytes per span are
the file's size for the JSONL file and the SQLite index (both files for
``jsonl+sqlite``, the two sinks every run writes to, side by side on one tracer),
and the memory retained (tracemalloc) for the in-memory sink.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks._common import BenchSink, Level, median_of, open_sink, quiet_tracer, ratio
from rolegraph.traces.spans import SpanKind
from rolegraph.traces.tracer import Tracer

SPANS: dict[Level, int] = {"smoke": 200, "quick": 5000, "full": 50000}
REPEATS: dict[Level, int] = {"smoke": 1, "quick": 3, "full": 5}
KINDS = ("none", "memory", "jsonl", "sqlite", "jsonl+sqlite")
"""Sink kinds; ``jsonl+sqlite`` is what every run writes to (its file and the live index, one tracer)."""
_TEXT = "The low-rank update leaves the pretrained weights frozen and trains two small matrices. " * 3


def write_spans(tracer: Tracer, count: int) -> None:
    """Open and close `count` chat-like spans under one agent span."""
    with tracer.span(SpanKind.INVOKE_AGENT, "invoke_agent bench"):
        for number in range(count):
            with tracer.span(
                SpanKind.CHAT,
                "chat scripted",
                gen_ai__operation__name="chat",
                gen_ai__request__model="scripted",
                gen_ai__request__max_tokens=512,
                rolegraph__input__last=_TEXT[:200],
                rolegraph__tools=["library_search", "fetch"],
            ) as span:
                span.record_usage(120 + number % 7, 40)


def _open(kind: str, folder: Path, name: str) -> list[BenchSink] | None:
    """The sinks of `kind` (none for ``none``); None when one is not available."""
    sinks = [open_sink(part, folder, name) for part in kind.split("+") if part != "none"]
    return None if None in sinks else [sink for sink in sinks if sink is not None]


def measure(kind: str, count: int, repeats: int, folder: Path) -> dict[str, Any] | None:
    """Spans per second and bytes per span for one sink kind; None when it is not available."""
    samples = []
    size: float | None = None
    for attempt in range(repeats + 1):  # the first pass warms up
        sinks = _open(kind, folder, f"{kind}-{attempt}")
        if sinks is None:
            return None
        tracer = quiet_tracer([sink.sink for sink in sinks])
        start = time.perf_counter_ns()
        write_spans(tracer, count)
        for sink in sinks:
            sink.close()  # inside the timing: the SQLite sink writes from a thread until closed
        elapsed = time.perf_counter_ns() - start
        sizes = [sink.size for sink in sinks if sink.size is not None]
        if sizes:
            size = sum(measured() for measured in sizes) / (count + 1)
        if attempt:
            samples.append(elapsed)
    if kind == "memory":
        tracemalloc.start()
        try:
            sinks = _open(kind, folder, "memory-size")
            assert sinks is not None
            before = tracemalloc.get_traced_memory()[0]
            write_spans(quiet_tracer([sink.sink for sink in sinks]), count)
            size = (tracemalloc.get_traced_memory()[0] - before) / (count + 1)
        finally:
            tracemalloc.stop()
    return {"spans_per_s": ratio(count + 1, median_of(samples) / 1e9), "bytes_per_span": size}


def run(level: Level = "quick") -> dict[str, Any]:
    """Measure every sink kind; figures by kind (an unavailable sink maps to None)."""
    with tempfile.TemporaryDirectory(prefix="rolegraph-bench-") as tmp:
        return {
            "spans": SPANS[level],
            "sinks": {kind: measure(kind, SPANS[level], REPEATS[level], Path(tmp)) for kind in KINDS},
        }
