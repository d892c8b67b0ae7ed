"""The final-answer envelope: how an agent's typed answer travels as model output.

An agent asks for its final answer with ``output_schema=final_schema(answer_schema)``;
the model replies with JSON text ``{"thought": "...", "answer": {...}}``. Keeping the
thought beside the answer means every step, the last one too, records why.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["THOUGHT_MAX_CHARS", "final_schema", "final_text", "parse_final"]

THOUGHT_MAX_CHARS = 400
"""Bound on a thought's length in constrained decoding, so a small model cannot ramble forever."""


def final_schema(answer_schema: dict[str, Any], thought_chars: int = THOUGHT_MAX_CHARS) -> dict[str, Any]:
    """The JSON Schema of a final answer wrapping `answer_schema`, its thought at most `thought_chars` long."""
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string", "maxLength": thought_chars},
            "answer": answer_schema,
        },
        "required": ["thought", "answer"],
        "additionalProperties": False,
    }


def final_text(answer: Any, thought: str = "") -> str:
    """The text a model returns for a final answer (what scripted models emit)."""
    return json.dumps({"thought": thought, "answer": answer}, ensure_ascii=False)


def parse_final(text: str) -> tuple[str, Any]:
    """Split a final answer's text into ``(thought, answer)``.

    Raises:
        ValueError: The text is not JSON, or not an object with an ``answer``.
    """
    value = _json_value(text)
    if not isinstance(value, dict) or "answer" not in value:
        raise ValueError('expected a JSON object {"thought": ..., "answer": ...}')
    thought = value.get("thought", "")
    return (thought if isinstance(thought, str) else str(thought)), value["answer"]


_DECODER = json.JSONDecoder()


def _json_value(text: str) -> Any:
    """`json.loads(text)`, without its two scans for surrounding whitespace when the text is exactly one JSON
    value (a model's answer nearly always is): anything else is handed to `json.loads`, which gives the same
    value or the same error as it always did."""
    try:
        value, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError:  # leading whitespace, or not JSON at all
        return json.loads(text)
    return value if end == len(text) else json.loads(text)
