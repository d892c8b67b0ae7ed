"""The workflow document: the pydantic models behind a rolegraph YAML file.

`WorkflowSpec.model_json_schema()` is what `rolegraph schema` prints, so editors
can validate workflow files. Field docstrings become the schema's descriptions.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from rolegraph.models.cache import DEFAULT_MAX_MB, DEFAULT_TTL_S
from rolegraph.models.model import ModelSettings
from rolegraph.models.registry import ModelOptions, option_problem
from rolegraph.traces.content import ContentMode
from rolegraph.workflows.output_checks import BUILTIN_CHECKS, CheckSpec, JudgeSpec, ModerationSpec

__all__ = [
    "BUILTIN_CHECKS",
    "Budget",
    "CheckSpec",
    "ForEachSpec",
    "InputSpec",
    "JudgeSpec",
    "ModelSpec",
    "ModerationSpec",
    "OutputField",
    "OutputSpec",
    "Privacy",
    "RoleSpec",
    "RouteSpec",
    "RunSettings",
    "StepKind",
    "StepSpec",
    "WorkflowSpec",
    "check_executor",
]

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
"""A step, role, input or model name: usable as an identifier in templates."""

_TYPES = (
    r"string|integer|number|boolean|source_id|list\[\s*(string|integer|number|boolean|source_id)\s*\]|enum\[[^\]]+\]"
)

OutputType = Annotated[str, StringConstraints(pattern=rf"^\s*({_TYPES})\s*$")]
"""An output field's type: ``string``, ``integer``, ``number``, ``boolean``, ``source_id``,
``list[<one of those>]`` or ``enum[a, b, c]``. A ``source_id`` can only name a source
the agent has seen retrieved."""

EXECUTORS = "local, ray or ray://host:port"
"""The executors a run can name (``settings.executor``, ``--executor``)."""
_EXECUTOR = re.compile(r"local|ray|ray://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?")


def check_executor(name: str) -> str:
    """`name` if it names an executor: ``local`` (this process), ``ray`` (the Ray cluster at
    ``RAY_ADDRESS``, or a new local one) or ``ray://host:port`` (a Ray cluster's client address).

    Raises:
        ValueError: It names none (the message lists those there are).
    """
    if not _EXECUTOR.fullmatch(name):
        raise ValueError(f"unknown executor {name!r}: use {EXECUTORS}")
    return name


FieldType = Annotated[str, StringConstraints(pattern=rf"^\s*({_TYPES}|enum)\s*$")]
"""An output field's `type` in the long form: an `OutputType`, or ``enum`` with the `values` beside it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputSpec(_Strict):
    """A typed workflow input. Without a default it must be given at run time."""

    type: Literal["string", "integer", "number", "boolean", "list"] = "string"
    """The input's type; command-line values are converted to it."""
    default: Any = None
    """Value used when the input is not given."""
    description: str = ""
    """Shown by `rolegraph validate` and in the JSON Schema."""


class ModelSpec(_Strict):
    """A named model: a model string plus settings."""

    model: str
    """Model string: ``local``, ``llamacpp:/path/model.gguf``, ``openai:gpt-4o-mini``,
    ``openai-compatible:<model>@<base_url>``, ``ollama:<model>``, ``hf:<repo>``, ``scripted:<file.yaml>``."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    """Sampling temperature; 0 is greedy (most reproducible)."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    seed: int | None = None
    """Sampling seed, for providers that honour one."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Upper bound on generated tokens per call."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds before one model call is abandoned, its retries included."""
    retries: int | None = Field(default=None, ge=0, le=20)
    """Retries of a transient failure (connection reset, timeout, HTTP 429 or 5xx) per model call (default 3)."""
    attempt_timeout: float | None = Field(default=None, gt=0)
    """Seconds one try of a model call may take before it is retried (default: `timeout`)."""
    api: Literal["chat", "responses"] | None = None
    """OpenAI protocol: ``responses`` (default for ``openai:``) or ``chat`` (default for
    ``openai-compatible:`` and ``ollama:``; ``responses`` for servers that implement it)."""
    provider: str | None = None
    """``hf:`` only: the Hugging Face inference provider (``auto``, ``hf-inference``, ``together``, ...)."""
    base_url: str | None = None
    """``hf:`` only: an Inference Endpoint or TGI server to send requests to instead."""
    lora: str | None = None
    """``local`` and ``llamacpp:`` only: a LoRA adapter GGUF file, relative to the workflow's folder."""
    lora_scale: float | None = Field(default=None, ge=-4.0, le=4.0)
    """How strongly the LoRA adapter applies (default 1.0; 0 gives the base model's output)."""
    cache: bool | None = None
    """Answer this model's repeated calls from the model-call cache (default: ``settings.cache``)."""

    @model_validator(mode="after")
    def _options_fit_the_model(self) -> ModelSpec:
        problem = option_problem(self.model, self.options())
        if problem is not None:
            raise ValueError(problem)
        return self

    def settings(self) -> ModelSettings:
        """The call settings this spec sets (unset fields stay unset)."""
        fields = self.model_dump(exclude={"model", "cache", *ModelOptions.model_fields}, exclude_none=True)
        return ModelSettings(**fields)

    def options(self) -> ModelOptions:
        """How the model is built (API, inference provider, LoRA adapter): the options this spec sets."""
        return ModelOptions(**self.model_dump(include=set(ModelOptions.model_fields), exclude_none=True))


@functools.lru_cache(maxsize=256)
def _string_model(string: str) -> ModelSpec:
    """The spec of a plain model string (``models: {default: openai:gpt-4o-mini}``). Validating one checks its
    options against the model string: every run asked for its models' specs again."""
    return ModelSpec(model=string)


class OutputField(_Strict):
    """One field of a role's answer (or of a function step's output): its type, what it means, its bounds.

    Written in full, ``relevance: {type: integer, minimum: 0, maximum: 10, description: ...}``,
    or as its type alone, ``relevance: integer``. The description and bounds reach the JSON
    Schema the model answers to (and the grammar of the embedded model), and the answer is
    validated against them.
    """

    type: FieldType
    """The field's type (see `OutputType`), or ``enum`` with `values`."""
    description: str = ""
    """What the field means, for the model (the schema's ``description``)."""
    minimum: float | None = None
    """Least value allowed (``integer``, ``number``, or each item of a list of them)."""
    maximum: float | None = None
    """Greatest value allowed (``integer``, ``number``, or each item of a list of them)."""
    min_items: int | None = Field(default=None, ge=0)
    """Fewest items of a list."""
    max_items: int | None = Field(default=None, ge=1)
    """Most items of a list."""
    values: list[str] | None = Field(default=None, min_length=1, validation_alias=AliasChoices("values", "enum"))
    """The allowed values of an ``enum`` field (``enum:`` is accepted too)."""

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"type": data}
        if not isinstance(data, dict):
            raise ValueError(
                "expected a type such as 'integer' or 'list[string]', or a mapping {type: ..., description: ...}"
            )
        return data

    @model_validator(mode="after")
    def _bounds_fit_the_type(self) -> OutputField:
        kind = self.type.strip()
        numbers = kind in ("integer", "number") or re.fullmatch(r"list\[\s*(integer|number)\s*\]", kind)
        misplaced = [k for k in ("minimum", "maximum") if getattr(self, k) is not None and not numbers]
        misplaced += [
            k for k in ("min_items", "max_items") if getattr(self, k) is not None and not kind.startswith("list")
        ]
        if misplaced:
            raise ValueError(f"{' and '.join(misplaced)} cannot be set for a field of type {kind!r}")
        if kind == "enum" and not self.values:
            raise ValueError("type 'enum' needs its values: add 'values: [a, b]' (or write 'enum[a, b]')")
        if kind != "enum" and self.values is not None:
            raise ValueError(f"values belong to type 'enum', not {kind!r}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum {self.minimum:g} is above maximum {self.maximum:g}")
        if self.min_items is not None and self.max_items is not None and self.min_items > self.max_items:
            raise ValueError(f"min_items {self.min_items} is above max_items {self.max_items}")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The short form is valid too: editors must accept `relevance: integer`.
        return {"anyOf": [{"type": "string", "pattern": rf"^\s*({_TYPES})\s*$"}, handler(schema)]}


OutputFields = dict[Name, OutputField]
"""Output fields by name, each in the long or the short form (see `OutputField`)."""


class RoleSpec(_Strict):
    """A role: instructions, tools, output fields, step budget.

    Naming a built-in role (``planner``, ``researcher``, ``critic``, ``writer``)
    overrides only the fields given; any other name defines a new role, which
    needs `instructions` and `output`.
    """

    description: str = ""
    """One line on what the role is for."""
    instructions: str | None = None
    """The role's system instructions."""
    tools: list[str] | None = None
    """Tools the role may call: built-in names (``library_search``) or import paths (``pkg.module:attr``)."""
    output: OutputFields | None = None
    """The final answer's fields: each its type (``{summary: string, cites: list[source_id]}``) or a
    mapping with its type, description and bounds (see `OutputField`)."""
    max_steps: int | None = Field(default=None, ge=1, le=50)
    """Think-act-observe iterations before the agent must answer."""
    min_tool_calls: int | None = Field(default=None, ge=0, le=50)
    """Tool calls the agent must make before it may answer."""
    model: str | None = None
    """A name from `models` (or a model string) this role uses instead of the default."""
    thought_chars: int | None = Field(default=None, ge=0, le=400)
    """Longest thought the model may write before its final answer (0: none; default 400). A small
    model answers faster without one."""
    writing: Literal["extractive", "abstractive"] | None = None
    """For a writer: ``extractive`` assembles paragraphs from the quoted evidence, the model choosing
    their order and the words that join them; ``abstractive`` lets the model write prose. Default:
    extractive on the embedded ``local`` model, abstractive on any other."""
    checking: Literal["per_claim", "free"] | None = None
    """For a critic reading evidence: ``per_claim``, the model gives a verdict on each claim its task
    lists, in order, and the engine writes the critique (its ``drop`` list); ``free``, the model
    writes the critique itself. Default: per_claim on the embedded ``local`` model, free on any other."""
    checks: list[CheckSpec] | None = None
    """Output checks every answer of this role must pass (see `CheckSpec`); a failed check is sent back
    to the model to fix, then fails the step."""


_ITEM_ERROR = re.compile(r"fail|skip|retry:([1-9]|10)")


class ForEachSpec(_Strict):
    """Fan a step out over a list: one agent per item, run in parallel."""

    items: str
    """Expression giving the list, e.g. ``steps.plan.questions``."""
    as_: Name = Field(default="item", alias="as")
    """Name of the current item in the task template."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """At most this many items at once (the run-wide limit still applies)."""
    max_items: int = Field(default=32, ge=1, le=10_000)
    """Items past this many are dropped (and the drop is traced)."""
    on_item_error: str = Field(default="fail", json_schema_extra={"pattern": _ITEM_ERROR.pattern})
    """What a failed item does: ``fail`` fails the step (the default); ``skip`` leaves it out of the
    step's output, recorded with its error (step state, trace, run.json); ``retry:N`` runs it again up
    to N times (1 to 10), then fails the step."""

    @field_validator("on_item_error")
    @classmethod
    def _policy(cls, value: str) -> str:
        if _ITEM_ERROR.fullmatch(value) is None:
            raise ValueError(f"on_item_error is fail, skip or retry:N (N from 1 to 10), not {value!r}")
        return value

    @property
    def skips(self) -> bool:
        """Whether a failed item is left out rather than failing the step."""
        return self.on_item_error == "skip"

    @property
    def retries(self) -> int:
        """How many more times a failed item is run (``retry:N``), else 0."""
        return int(self.on_item_error.partition(":")[2] or 0)


class Budget(_Strict):
    """Hard limits on what a run (``settings.budget``) or one step (``steps.<id>.budget``) may use.

    Reaching one stops the run with status ``budget_exceeded``; the run can be resumed
    with a higher limit (``rolegraph resume RUN --max-tokens N``). Unset: no limit.
    """

    max_tokens: int | None = Field(default=None, ge=1)
    """Model tokens, input plus output, over every model call."""
    max_cost_usd: float | None = Field(default=None, gt=0)
    """Cost in USD of the model calls, at the price table's prices."""
    max_wall_s: float | None = Field(default=None, gt=0)
    """Seconds of wall time (for a run: summed over its invocations, resumes included)."""
    max_tool_calls: int | None = Field(default=None, ge=0)
    """Tool calls made."""
    max_iterations: int | None = Field(default=None, ge=1)
    """Agent loop iterations (model calls: acting steps, final answers and repairs)."""

    def merged(self, override: Budget | None) -> Budget:
        """This budget with every limit set in `override` replacing its own."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))

    def limits(self) -> dict[str, float]:
        """The limits that are set, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RouteSpec(_Strict):
    """After the step, if `when` holds, run `goto` again: a loop with an explicit bound."""

    when: str
    """Expression over the step's ``output`` (and ``inputs``, ``steps``), e.g. ``output.verdict == 'revise'``."""
    goto: Name
    """The step to run again; it must be this step or one it depends on."""
    max_times: int = Field(ge=1, le=100)
    """How many times this route may fire in one run."""


Privacy = Literal["any", "local_only"]
"""Where a workflow's content may go: ``any`` service, or ``local_only`` (this machine)."""

StepKind = Literal["agent", "tool", "function"]
"""What does a step's work: a role's agent (with a model), one tool call, or one Python function call."""


class StepSpec(_Strict):
    """One node of the workflow graph: a role's agent on a task, a tool call, or a Python function call.

    Exactly one of `role`, `tool` and `function` is set. A tool or function step uses no
    model: its `args` are rendered (each string a template) and passed to the tool or function.
    """

    role: Name | None = None
    """The role whose agent does this step (with `task`)."""
    tool: str | None = None
    """A tool this step calls once, with `args` and no model: a built-in name (``library_search``) or an
    import path (``pkg.module:attr``). Its output is ``{args, content, data, sources, is_error}``."""
    function: str | None = None
    """A Python function this step calls once, with `args` and no model: an import path
    (``pkg.module:function``, looked up next to the workflow file first). Its return value is the output."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Arguments of a tool or function step. Strings are Jinja templates over the same context as a
    task; a string that is one ``{{ expression }}`` keeps the expression's type (a list, a number)."""
    output: OutputFields | None = None
    """The fields and types a function step's return value must have (as a role's `output`)."""
    task: str = ""
    """Task text of a role step, a Jinja template over ``inputs``, ``steps.<id>`` (outputs of
    dependencies) and the `for_each` item."""
    description: str = ""
    """One line shown in progress output and graphs."""
    depends_on: list[Name] = Field(default_factory=list)
    """Steps that must finish first; their outputs are available to the task template."""
    for_each: ForEachSpec | None = None
    """Run once per item of a list, in parallel; the step's output is the list of results."""
    routes: list[RouteSpec] = Field(default_factory=list)
    """Conditional loops back to this or an earlier step, each with a bound."""
    model: str | None = None
    """A name from `models` (or a model string) overriding the role's model for this step."""
    max_steps: int | None = Field(default=None, ge=1, le=50)
    """Overrides the role's `max_steps` for this step."""
    budget: Budget | None = None
    """Limits on what this step may use (all its items and visits together)."""
    checks: list[CheckSpec] | None = None
    """Output checks this step's answers must pass, run after its role's (see `CheckSpec`). A tool or
    function step's output is checked too; it has no model to fix it, so a failed check fails the step."""

    @property
    def kind(self) -> StepKind:
        """``agent`` for a role step, ``tool`` or ``function`` for the others."""
        if self.tool is not None:
            return "tool"
        if self.function is not None:
            return "function"
        return "agent"

    @model_validator(mode="after")
    def _check_kind(self) -> StepSpec:
        doers = [key for key in ("role", "tool", "function") if getattr(self, key) is not None]
        if len(doers) != 1:
            given = " and ".join(repr(k) for k in doers) if doers else "none of them"
            raise ValueError(
                f"a step needs exactly one of 'role' (an agent), 'tool' or 'function' (no model); it has {given}"
            )
        if self.role is not None:  # (a missing task is reported by the loader, at the task's place)
            misplaced = [key for key in ("args", "output") if getattr(self, key)]
            if misplaced:
                raise ValueError(
                    f"{' and '.join(repr(k) for k in misplaced)} belong to tool and function steps; "
                    "a role step is given its work in 'task' (and its role's 'output')"
                )
            return self
        misplaced = [key for key in ("task", "model", "max_steps") if getattr(self, key)]
        if self.tool is not None and self.output is not None:
            misplaced.append("output")
        if misplaced:
            raise ValueError(
                f"a {self.kind} step uses no model, so {' and '.join(repr(k) for k in misplaced)} do not apply; "
                f"give the {self.kind} its inputs in 'args'"
            )
        return self

    @property
    def doer(self) -> str:
        """Who does the step, for labels: the role, ``tool <name>`` or ``function <import path>``."""
        if self.tool is not None:
            return f"tool {self.tool}"
        if self.function is not None:
            return f"function {self.function}"
        return self.role or ""

    def agent_role(self) -> str:
        """The step's role (for an agent step).

        Raises:
            ValueError: The step is a tool or function step.
        """
        if self.role is None:
            raise ValueError(f"a {self.kind} step has no role")
        return self.role


class OutputSpec(_Strict):
    """A file the run writes into its folder when it ends."""

    path: str
    """File name, relative to the run folder."""
    render: Literal["report", "json", "sources", "bibtex", "template"]
    """``report``: a writer's output as markdown with numbered references;
    ``json``: a step's output as JSON; ``sources``: the run's sources as JSON;
    ``bibtex``: the run's sources as BibTeX; ``template``: render `template`."""
    from_: Name | None = Field(default=None, alias="from")
    """The step whose output is rendered (``report``, ``json``)."""
    template: str | None = None
    """Jinja template over ``inputs``, ``steps`` and ``sources`` (``render: template``)."""

    @model_validator(mode="after")
    def _check_fields(self) -> OutputSpec:
        if self.render in ("report", "json") and self.from_ is None:
            raise ValueError(f"render '{self.render}' needs 'from: <step>'")
        if self.render == "template" and self.template is None:
            raise ValueError("render 'template' needs 'template: ...'")
        return self


class RunSettings(_Strict):
    """Run-wide behaviour."""

    max_concurrency: int = Field(default=4, ge=1, le=10_000)
    """At most this many agents run at once in the whole run."""
    fail_fast: bool = True
    """When a step fails, cancel the rest of the run (else: only its dependants are skipped)."""
    step_timeout: float = Field(default=1800.0, gt=0)
    """Seconds before one step (one agent) is abandoned."""
    run_timeout: float | None = Field(default=None, gt=0)
    """Seconds before the whole run is abandoned (its steps in flight cancelled); default: no limit."""
    content: ContentMode = "full"
    """What the trace keeps of prompts, answers and tool payloads: ``full``; ``metadata`` (structure,
    timings, tokens, names and sizes, no text); ``redacted`` (shape kept, each text replaced by its
    length and a short hash). Secrets are redacted in every mode."""
    redact_env: list[Name] = Field(default_factory=list)
    """Environment variables whose values are always redacted from traces, logs and run files
    (besides API keys and tokens, which always are)."""
    budget: Budget = Field(default_factory=Budget)
    """Limits on what the whole run may use."""
    cache: bool = False
    """Answer a model call made before (same model, same request, not sampled) from the model-call
    cache in ``$ROLEGRAPH_HOME``, at no cost; a model's own ``cache`` overrides it."""
    cache_ttl_s: float = Field(default=DEFAULT_TTL_S, gt=0)
    """Seconds a cached answer stays usable (default a week)."""
    cache_max_mb: float = Field(default=DEFAULT_MAX_MB, gt=0)
    """Size cap of the cache in megabytes; past it, the oldest answers are evicted."""
    privacy: Privacy = "any"
    """``local_only``: the workflow may use only models and tools that keep its content on this
    machine (embedded models, and servers on a loopback address); loading refuses any hosted model
    or web tool, at its line. ``any`` (the default): no such limit."""
    executor: str = "local"
    """Where the steps run: ``local`` (this process), ``ray`` (the Ray cluster at ``RAY_ADDRESS``, or a
    new local one bound to 127.0.0.1) or ``ray://host:port``; ``--executor`` replaces it for one run."""

    @field_validator("executor")
    @classmethod
    def _check_executor(cls, value: str) -> str:
        return check_executor(value)


def _default_models() -> dict[str, ModelSpec | str]:
    return {"default": "local"}


class WorkflowSpec(_Strict):
    """A rolegraph workflow document (``rolegraph: 1``)."""

    rolegraph: Literal[1]
    """Format version of this document."""
    name: Name
    """The workflow's name."""
    description: str = ""
    """What the workflow does."""
    library: str | None = None
    """Folder of local documents for the ``library_search`` tool, relative to the workflow file."""
    inputs: dict[Name, InputSpec] = Field(default_factory=dict)
    """Typed inputs, given with ``--input name=value`` or to ``run(...)``."""
    models: dict[Name, ModelSpec | str] = Field(default_factory=_default_models)
    """Named models; ``default`` is used by every role without its own."""
    roles: dict[Name, RoleSpec] = Field(default_factory=dict)
    """Role definitions and overrides of the built-in roles."""
    steps: dict[Name, StepSpec] = Field(min_length=1)
    """The steps, by id."""
    outputs: dict[Name, OutputSpec] = Field(default_factory=dict)
    """Files to write from the results."""
    settings: RunSettings = Field(default_factory=RunSettings)
    """Run-wide behaviour."""

    def model_spec(self, name: str) -> ModelSpec:
        """The named model (`name` may also be a model string not defined in `models`). Read it, never change
        it: the spec of a plain model string is made once per process (`_string_model`)."""
        entry = self.models.get(name, name)
        return _string_model(entry) if isinstance(entry, str) else entry
