"""What changed in a prompt, when a replay diverged because a chat call's request changed.

The run store keeps only a digest of each request; the traces keep each chat call's
last input message (``rolegraph.input.last``, under ``settings.content: full``). The
change is shown as a short unified diff of that message, recorded run against replay.

```python
lines = prompt_change(original_dir, replay_dir, "write#1/chat/1")
print("\\n".join(lines))  # --- recorded / +++ replay / @@ ... @@ / -Write the review. / +Write a short review.
```
"""

from __future__ import annotations

import difflib
from pathlib import Path

from rolegraph.layout import RunFolder
from rolegraph.traces.trace import Trace

__all__ = ["CONTEXT_LINES", "prompt_change"]

CONTEXT_LINES = 1
"""Unchanged lines shown around each change."""
_LAST = "rolegraph.input.last"
_CALL = "rolegraph.call.id"


def _last_message(run_dir: Path, call_id: str) -> str | None:
    """The last input message of `call_id`'s chat span in the run's trace (None if not kept)."""
    try:
        trace = Trace.load(RunFolder(run_dir).trace)
    except OSError:
        return None
    for span in trace.walk():
        if span.kind == "chat" and span.attributes.get(_CALL) == call_id:
            value = span.attributes.get(_LAST)
            return value if isinstance(value, str) else None
    return None


def prompt_change(original: Path, replay: Path, call_id: str) -> list[str]:
    """A unified diff of the call's last input message, recorded (``-``) against replayed (``+``).

    Returns:
        The diff's lines; or one line saying why there is none (the traces keep no prompt
        text, or the last message is the same and the change is in an earlier message).
    """
    before, after = _last_message(original, call_id), _last_message(replay, call_id)
    if before is None or after is None:
        return ["(no prompt text to compare: the traces keep it only with settings.content: full)"]
    if before == after:
        return ["(the last message is the same: the change is in an earlier one, e.g. the role's instructions)"]
    diff = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "recorded", "replay", n=CONTEXT_LINES, lineterm=""
    )
    return list(diff)
