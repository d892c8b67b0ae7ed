"""Searching a run's spans for text: in names, errors and every attribute value (thoughts, prompts,
tool arguments and results), each hit with the line around it.

```python
hits = search_spans(trace, "quantised")   # [{"id": "…", "field": "rolegraph.tool.result", "snippet": "…"}]
```
"""

from __future__ import annotations

import json
from typing import Any

from rolegraph.traces.trace import SpanRecord, Trace

__all__ = ["MAX_HITS", "search_spans"]

MAX_HITS = 1000
"""Hits returned at most (the page says when there were more)."""
_AROUND = 60


def _fields(span: SpanRecord) -> list[tuple[str, str]]:
    fields = [("name", span.name)]
    if span.error:
        fields.append(("error", span.error))
    for key, value in span.attributes.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        fields.append((key, text))
    return fields


def _snippet(text: str, at: int, length: int) -> str:
    start, end = max(0, at - _AROUND), min(len(text), at + length + _AROUND)
    line = " ".join(text[start:end].split())
    return ("…" if start else "") + line + ("…" if end < len(text) else "")


def search_spans(trace: Trace, text: str) -> dict[str, Any]:
    """The spans holding `text` (case-insensitive), in tree order: ``{"hits": [...], "more": bool}``.

    Each hit is the span's id, the first field that holds the text, and a snippet around it.
    """
    needle = text.casefold().strip()
    hits: list[dict[str, Any]] = []
    if not needle:
        return {"hits": hits, "more": False}
    for span in trace.walk():
        for field, value in _fields(span):
            at = value.casefold().find(needle)
            if at >= 0:
                if len(hits) == MAX_HITS:
                    return {"hits": hits, "more": True}
                hits.append({"id": span.span_id, "field": field, "snippet": _snippet(value, at, len(needle))})
                break
    return {"hits": hits, "more": False}
