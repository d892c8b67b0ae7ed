"""Answers of OpenAI's moderation endpoint, for the loopback servers of the moderation tests."""

from __future__ import annotations

from typing import Any


def moderation_body(flagged: bool) -> dict[str, Any]:
    """A body of the documented shape (`openai.types.ModerationCreateResponse`; OpenAI's API reference example)."""
    names = [
        "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
        "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
        "violence/graphic",
    ]  # fmt: skip
    return {
        "id": "modr-0d9740456c391e43c445bf0f010940c7",
        "model": "omni-moderation-latest",
        "results": [
            {
                "flagged": flagged,
                "categories": {n: flagged and n in ("harassment", "violence") for n in names},
                "category_scores": {n: 0.9 if flagged and n in ("harassment", "violence") else 0.001 for n in names},
                "category_applied_input_types": {n: ["text"] for n in names},
            }
        ],
    }
