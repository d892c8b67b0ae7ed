"""Models on a Ray cluster: a `ModelActor` holds models' weights, and steps call them through a `RemoteModel`.

A model is loaded once per node (a detached actor per node and model, named for
both, found again by later steps and later runs), so its weights are read once.
A model that answers by position (a ``scripted:`` file) is held once per run
instead, by the driver process's own actor on the driver's node (`run_models_for`):
its answers then follow one order, as in a local run, and survive the loss of a
worker node. A worker process keeps the actors it found and the models they
loaded, so a step does not look them up again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings
from rolegraph.models.registry import ModelOptions, resolve_model

__all__ = ["NAMESPACE", "ActorModels", "ModelActor", "RemoteModel", "per_run", "run_models_for"]

NAMESPACE = "rolegraph"
"""The Ray namespace of rolegraph's named actors."""

Described = tuple[str, str, dict[str, Any], str, bool]
"""A model's name, id, options, revision and whether it samples by default."""

_KEPT = 512
"""How many found models a worker process remembers (the oldest are forgotten first)."""


@ray.remote(num_cpus=0, max_concurrency=64)
class ModelActor:
    """Holds models by key; its calls are their calls."""

    def __init__(self) -> None:
        self.models: dict[str, Model] = {}
        self._loading = asyncio.Lock()

    async def load(self, key: str, model_string: str, base_dir: str, options: ModelOptions) -> Described:
        """Load the model under `key` unless it is loaded; how it describes itself."""
        async with self._loading:
            if key not in self.models:
                self.models[key] = resolve_model(model_string, base_dir=Path(base_dir), options=options)
        model = self.models[key]
        return model.name, model.model_id, model.options, model.revision, model.samples_by_default

    async def complete(
        self,
        key: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        output_schema: dict[str, Any] | None,
        settings: ModelSettings | None,
    ) -> Completion:
        """One call of the model under `key`."""
        return await self.models[key].complete(messages, tools=tools, output_schema=output_schema, settings=settings)

    async def check(self, key: str) -> None:
        """The model's own check (is its server up?)."""
        await self.models[key].check()

    async def skip_replayed(self, key: str, count: int) -> None:
        """Pass over replayed calls (a script)."""
        self.models[key].skip_replayed(count)

    async def drop(self, keys: list[str]) -> None:
        """Release the models under `keys` (a finished run's)."""
        for key in keys:
            model = self.models.pop(key, None)
            if model is not None:
                await model.aclose()


def per_run(model_string: str) -> bool:
    """Whether the model answers by position, so that a run must have exactly one of it."""
    return model_string.startswith("scripted")


def _model_key(model_string: str, base_dir: Path, options: ModelOptions) -> str:
    key = f"{model_string}\n{base_dir}\n{options.model_dump_json()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


_RUN_MODELS: dict[str, Any] = {}


def run_models_for(node_id: str) -> Any:
    """This driver's actor of its runs' own models (made on first use, on `node_id`; it ends with the driver)."""
    job = ray.get_runtime_context().get_job_id()
    if job not in _RUN_MODELS:
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        _RUN_MODELS[job] = ModelActor.options(scheduling_strategy=strategy).remote()  # type: ignore[attr-defined]
    return _RUN_MODELS[job]


_NODE_ACTORS: dict[str, Any] = {}
_LOADED: dict[tuple[str, str], Described] = {}


def _node_actor(name: str, node_id: str) -> Any:
    """The node's detached actor named `name` (found, or made, once per process)."""
    if name not in _NODE_ACTORS:
        _NODE_ACTORS[name] = ModelActor.options(  # type: ignore[attr-defined]  # ray.remote made it an actor class
            name=name,
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached",  # outlives the run: the next run on this node finds the weights loaded
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote()
    return _NODE_ACTORS[name]


def _loaded(where: str, actor: Any, key: str, model_string: str, base_dir: Path, options: ModelOptions) -> Described:
    """The model under `key` on `actor` (named `where`), loaded there if it is not (asked once per process)."""
    found = (where, key)
    if found not in _LOADED:
        if len(_LOADED) >= _KEPT:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[found] = ray.get(actor.load.remote(key, model_string, str(base_dir.resolve()), options))
    return _LOADED[found]


class RemoteModel(Model):
    """A model held by a `ModelActor` under a key: every call goes to the actor."""

    def __init__(self, actor: Any, key: str, described: Described) -> None:
        self.actor = actor
        self.key = key
        self.name, self._model_id, self._options, self._revision, self.samples_by_default = described

    @property
    def model_id(self) -> str:
        """The actor's model's id."""
        return str(self._model_id)

    @property
    def revision(self) -> str:
        """The actor's model's revision (a local file's size and time)."""
        return str(self._revision)

    @property
    def options(self) -> dict[str, Any]:
        """The actor's model's options."""
        return dict(self._options)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        output_schema: dict[str, Any] | None = None,
        settings: ModelSettings | None = None,
    ) -> Completion:
        """Call the model on its actor."""
        call = self.actor.complete.remote(self.key, list(messages), tools, output_schema, settings)
        completion: Completion = await call
        return completion

    async def check(self) -> None:
        """Run the model's check on its actor."""
        await self.actor.check.remote(self.key)

    def skip_replayed(self, count: int) -> None:
        """Tell the actor's model about replayed calls."""
        ray.get(self.actor.skip_replayed.remote(self.key, count))


class ActorModels:
    """A run's `ModelResolver` on a cluster: each model string gives a `RemoteModel` of its actor for `node_id`.

    A script is the run's own, held by the driver's `run_models` actor under `run_key` (one per run
    executor); any other model is the node's. `run_keys` lists the run's own models, for the driver to
    drop when the run ends.
    """

    def __init__(self, *, run_key: str, node_id: str, run_models: Any) -> None:
        self.run_key = run_key
        self.node_id = node_id
        self.run_models = run_models
        self.run_keys: list[str] = []

    def __call__(self, model_string: str, base_dir: Path, options: ModelOptions) -> Model:
        """The model `model_string` names, held by its actor."""
        key = _model_key(model_string, base_dir, options)
        if per_run(model_string):
            where, actor, key = "run-models", self.run_models, f"{self.run_key}:{key}"
            self.run_keys.append(key)
        else:
            where = f"model:node-{self.node_id}:{key}"
            actor = _node_actor(where, self.node_id)
        return RemoteModel(actor, key, _loaded(where, actor, key, model_string, base_dir, options))
