"""A model that plays a script: deterministic completions for tests, from a list, a function or a YAML file.

```python
model = ScriptedModel([tool_call("library_search", query="LoRA"), final({"claims": []})])
result = await Agent(role="researcher", model=model, tools=[library]).run(task)
model.assert_complete()
```

The script file behind ``scripted:<file.yaml>`` is a list of entries, each one of::

    - {tool: library_search, args: {query: LoRA}, thought: "look it up"}   # one tool call
    - {calls: [{tool: a, args: {}}, {tool: b, args: {}}], thought: "..."}   # parallel calls
    - {final: {claims: []}, thought: "done"}                                 # the final-answer envelope
    - {text: "not JSON at all"}                                              # raw text, e.g. garbage
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegraph.errors import ModelError, ModelNotAvailableError
from rolegraph.models.envelope import final_text
from rolegraph.models.messages import Message, ToolCall, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage

__all__ = ["Responder", "ScriptedCall", "ScriptedModel", "load_script"]


@dataclass(frozen=True)
class ScriptedCall:
    """One call a `ScriptedModel` received.

    Attributes:
        index: 1-based position of the call.
        messages: The conversation sent.
        tools: The tools offered (empty when the call offered none).
        output_schema: The schema the final answer had to match, if any.
        settings: The settings of the call (the defaults when it passed none).
    """

    index: int
    messages: list[Message]
    tools: list[ToolSpec]
    output_schema: dict[str, Any] | None
    settings: ModelSettings


Responder = Callable[[ScriptedCall], Completion | Awaitable[Completion]]
"""A function that answers a call (sync or async), for scripts that depend on what the model is sent."""


class ScriptedModel(Model):
    """A deterministic model: answers each call with the next scripted completion.

    Args:
        responses: The completions, in call order, or a function producing one per call.
            An exception in the list is raised for its call (to script provider failures).
        name: The model string this instance stands for.
        keep_calls: Keep a `ScriptedCall` of each call in `calls` (for tests to inspect). A workflow's
            ``scripted:`` model keeps none: nothing reads them, and a long run's records were a third of
            the objects each garbage collection walked.

    Tool calls with an empty id get ``call_<n>``, numbered after the calls already in
    the conversation. A completion with no usage gets a rough, deterministic count
    (whitespace-separated words in and out), so usage roll-ups are never zero.
    """

    samples_by_default = False
    """A script answers the same way every time it is run."""

    def __init__(
        self,
        responses: Sequence[Completion | BaseException] | Responder,
        *,
        name: str = "scripted",
        keep_calls: bool = True,
    ) -> None:
        self.name = name
        self.keep_calls = keep_calls
        self._responder: Responder | None = None
        self._responses: list[Completion | BaseException] = []
        if callable(responses):
            self._responder = responses
        else:
            self._responses = list(responses)
        self.calls: list[ScriptedCall] = []
        """Every call received, in order (none kept unless `keep_calls`)."""
        self.answered = 0
        """How many calls were received (kept or not)."""
        self.skipped = 0
        """Responses passed over by `skip` (calls a resumed run replayed from its journal)."""

    @classmethod
    def from_yaml(cls, path: Path, *, name: str | None = None, keep_calls: bool = True) -> ScriptedModel:
        """A model playing the script file at `path` (see the module docstring for the format).

        Raises:
            ModelNotAvailableError: The file does not exist or is not a valid script.
        """
        return cls(load_script(path), name=name or f"scripted:{path}", keep_calls=keep_calls)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Record the call and return the next scripted completion.

        Raises:
            ModelError: The script has no response left (or scripted this error).
        """
        self.answered += 1
        index = self.skipped + self.answered
        call = None
        if self.keep_calls or self._responder is not None:  # a script read from a file needs no record
            call = self._call(index, messages, tools, output_schema, settings)
            if self.keep_calls:
                self.calls.append(call)
        if self._responder is not None and call is not None:
            produced = self._responder(call)
            response: Completion | BaseException = await produced if inspect.isawaitable(produced) else produced
        elif index <= len(self._responses):
            response = self._responses[index - 1]
        else:
            raise ModelError(f"scripted model has no response left for call {index}")
        if isinstance(response, BaseException):
            raise response
        return _finish(response, messages)

    @staticmethod
    def _call(
        index: int,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        output_schema: dict[str, Any] | None,
        settings: ModelSettings | None,
    ) -> ScriptedCall:
        return ScriptedCall(
            index=index,
            messages=list(messages),
            tools=list(tools or ()),
            output_schema=output_schema,
            settings=settings or ModelSettings(),
        )

    def skip_replayed(self, count: int) -> None:
        """Pass over the next `count` responses as if they had been asked for.

        A script answers by position; a resumed run replays its recorded calls from
        its journal instead of calling, so it moves the script past them first, and a
        call the model-call cache answers moves it past that call's response.
        """
        self.skipped += count

    def assert_complete(self) -> None:
        """Check that every scripted response was used.

        Raises:
            AssertionError: Some responses were never asked for.
        """
        unused = len(self._responses) - self.skipped - self.answered
        if self._responder is None and unused > 0:
            used = self.skipped + self.answered
            raise AssertionError(
                f"scripted model {self.name} used {used} of {len(self._responses)} responses; {unused} left unused"
            )


def _finish(response: Completion, messages: Sequence[Message]) -> Completion:
    """The scripted `response` as the call gets it: tool call ids, a rough usage and the model's name filled in."""
    update: dict[str, Any] = {}
    tool_calls = response.tool_calls
    if tool_calls and any(not c.id for c in tool_calls):
        first = sum(len(m.tool_calls) for m in messages) + 1
        update["tool_calls"] = [
            c if c.id else c.model_copy(update={"id": f"call_{first + i}"}) for i, c in enumerate(tool_calls)
        ]
    usage = response.usage
    if usage.input_tokens + usage.output_tokens == 0:
        words_in = 0
        for m in messages:
            words_in += _words(m.content)
            if m.tool_calls:
                words_in += sum(_words(c.arguments) + 1 for c in m.tool_calls)
        words_out = _words(response.text)
        if tool_calls:
            words_out += sum(_words(c.arguments) + 1 for c in tool_calls)
        update["usage"] = Usage(input_tokens=words_in, output_tokens=words_out)
    if not response.model:
        update["model"] = "scripted"
    return response.model_copy(update=update) if update else response


@functools.lru_cache(maxsize=512)
def _words(text: str) -> int:
    # Remembered (a few hundred texts): every call counts its whole conversation again, and a role's system
    # prompt and a chain's tasks recur from step to step.
    return len(text.split())


@dataclass(frozen=True)
class _Parsed:
    stamp: tuple[int, int, int, int]
    text: str
    completions: tuple[Completion, ...]


_SCRIPTS: dict[str, _Parsed] = {}
"""Parsed scripts by file: a workflow run many times parses its script once. The completions are
shared between runs, and never modified."""
_SCRIPTS_KEPT = 64
_SETTLED_S = 2.0
"""A file unchanged (same inode, size and times) and last modified longer ago than this is not read
again; a newer one is (file times can be coarser than two writes in a row)."""


def load_script(path: Path) -> list[Completion]:
    """The completions a script file describes (see the module docstring for the format).

    A file parsed before is not parsed again while its text is the same.

    Raises:
        ModelNotAvailableError: The file does not exist, is not UTF-8 or not valid YAML, or an
            entry is not one of the known forms (the model cannot be used: bad input, in one line).
    """
    key = str(path)
    known = _SCRIPTS.get(key)
    try:
        stat = path.stat()
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    except OSError:
        stamp = None
    if known is not None and known.stamp == stamp and time.time() - stat.st_mtime > _SETTLED_S:
        return list(known.completions)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelNotAvailableError(f"scripted model file not found: {path}") from None
    except UnicodeDecodeError as exc:
        message = f"{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
        raise ModelNotAvailableError(message) from None
    completions = known.completions if known is not None and known.text == text else tuple(_parse_script(path, text))
    _SCRIPTS.pop(key, None)
    if len(_SCRIPTS) >= _SCRIPTS_KEPT:
        _SCRIPTS.pop(next(iter(_SCRIPTS)))  # the least recently parsed
    if stamp is not None:
        _SCRIPTS[key] = _Parsed(stamp, text, completions)
    return list(completions)


def _parse_script(path: Path, text: str) -> list[Completion]:
    import yaml

    try:
        try:  # libyaml's loader when present (1,000 entries in milliseconds); its errors say less
            document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            document = yaml.safe_load(text)  # raises again, with PyYAML's own message and place
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelNotAvailableError(f"{where}: not valid YAML ({problem})") from None
    except RecursionError:
        raise ModelNotAvailableError(f"{path}: nested too deeply to read") from None
    if not isinstance(document, list):
        raise ModelNotAvailableError(f"{path}: a script is a YAML list of entries (tool, calls, final or text)")
    return [_entry(path, i, entry) for i, entry in enumerate(document, start=1)]


_FORMS = "{tool, args, thought}, {calls: [{tool, args}], thought}, {final, thought} or {text}"


def _entry(path: Path, number: int, entry: Any) -> Completion:
    def fail(problem: str) -> ModelNotAvailableError:
        return ModelNotAvailableError(f"{path}: entry {number}: {problem}; expected one of {_FORMS}")

    if not isinstance(entry, Mapping):
        raise fail(f"got {type(entry).__name__}")
    kinds = [k for k in ("tool", "calls", "final", "text") if k in entry]
    if len(kinds) != 1:
        raise fail(f"has {', '.join(kinds) or 'none'} of tool/calls/final/text, needs exactly one")
    thought = entry.get("thought", "")
    if not isinstance(thought, str):
        raise fail("thought must be a string")
    kind = kinds[0]
    if kind == "text":
        return Completion(text=str(entry["text"]))
    if kind == "final":
        try:
            return Completion(text=final_text(entry["final"], thought))
        except (TypeError, ValueError):  # YAML can hold what JSON cannot (dates, sets, non-string keys)
            raise fail("the final answer is not JSON data") from None
    raw_calls = [entry] if kind == "tool" else entry["calls"]
    if not isinstance(raw_calls, list) or not raw_calls:
        raise fail("calls must be a non-empty list")
    calls: list[ToolCall] = []
    for raw in raw_calls:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("tool"), str):
            raise fail("each call needs a tool name")
        args = raw.get("args", {})
        if not isinstance(args, Mapping):
            raise fail(f"args of {raw['tool']} must be a mapping")
        try:
            arguments = json.dumps(dict(args), ensure_ascii=False)
        except (TypeError, ValueError):
            raise fail(f"args of {raw['tool']} are not JSON data") from None
        calls.append(ToolCall(id="", name=raw["tool"], arguments=arguments))
    return Completion(text=thought, tool_calls=calls, finish_reason="tool_calls")
