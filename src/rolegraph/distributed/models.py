"""Models on a Ray cluster: one actor holds a model's weights, and steps call it through a `RemoteModel`.

A model is loaded once per node (a detached actor per node and model, named for
both, found again by later steps and later runs), so its weights are read once.
A model that answers by position (a ``scripted:`` file) is one actor for the
whole run instead, on the driver's node: its answers then follow one order, as in
a local run, and survive the loss of a worker node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rolegraph.models.messages import Message, ToolSpec
from rolegraph.models.model import Completion, Model, ModelSettings
from rolegraph.models.registry import ModelOptions, resolve_model

__all__ = ["NAMESPACE", "ActorModels", "ModelActor", "RemoteModel", "model_actor", "per_run"]

NAMESPACE = "rolegraph"
"""The Ray namespace of rolegraph's named actors."""


@ray.remote(num_cpus=0, max_concurrency=64)
class ModelActor:
    """Holds one model; its calls are the model's calls."""

    def __init__(self, model_string: str, base_dir: str, options: ModelOptions) -> None:
        self.model = resolve_model(model_string, base_dir=Path(base_dir), options=options)

    def describe(self) -> tuple[str, str, dict[str, Any]]:
        """The model's name, id and options."""
        return self.model.name, self.model.model_id, self.model.options

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None,
        output_schema: dict[str, Any] | None,
        settings: ModelSettings | None,
    ) -> Completion:
        """One model call."""
        return await self.model.complete(messages, tools=tools, output_schema=output_schema, settings=settings)

    async def check(self) -> None:
        """The model's own check (is its server up?)."""
        await self.model.check()

    def skip_replayed(self, count: int) -> None:
        """Pass over replayed calls (a script)."""
        self.model.skip_replayed(count)

    async def aclose(self) -> None:
        """Release the model."""
        await self.model.aclose()


def per_run(model_string: str) -> bool:
    """Whether the model answers by position, so that a run must have exactly one of it."""
    return model_string.startswith("scripted")


def _actor_name(scope: str, model_string: str, base_dir: Path, options: ModelOptions) -> str:
    key = f"{model_string}\n{base_dir}\n{options.model_dump_json()}"
    return f"model:{scope}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def model_actor(
    model_string: str, base_dir: Path, options: ModelOptions, *, run_id: str, node_id: str, create: bool
) -> Any:
    """The actor of a model for a step on node `node_id`: the node's own, or the run's (a script).

    With `create` False a run's actor is looked up only (the driver made it); a node's is made
    on first use.
    """
    if per_run(model_string):
        name = _actor_name(f"run-{run_id}", model_string, base_dir, options)
        if not create:
            return ray.get_actor(name, namespace=NAMESPACE)
        lifetime = None
    else:
        name = _actor_name(f"node-{node_id}", model_string, base_dir, options)
        lifetime = "detached"  # outlives the run: the next run on this node finds the weights loaded
    return ModelActor.options(  # type: ignore[attr-defined]  # ray.remote made it an actor class
        name=name,
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime=lifetime,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote(model_string, str(base_dir), options)


class RemoteModel(Model):
    """A model held by a `ModelActor`: every call goes to the actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.name, self._model_id, self._options = ray.get(actor.describe.remote())

    @property
    def model_id(self) -> str:
        """The actor's model's id."""
        return str(self._model_id)

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
        completion: Completion = await self.actor.complete.remote(list(messages), tools, output_schema, settings)
        return completion

    async def check(self) -> None:
        """Run the model's check on its actor."""
        await self.actor.check.remote()

    def skip_replayed(self, count: int) -> None:
        """Tell the actor's model about replayed calls."""
        ray.get(self.actor.skip_replayed.remote(count))


class ActorModels:
    """A run's `ModelResolver` on a cluster: each model string gives a `RemoteModel` of its actor for `node_id`.

    The driver (`driver=True`) makes the run's own actors (a script's); a worker finds them, and makes
    or finds its node's. `run_actors` lists the run's own actors the driver made, to end with the run.
    """

    def __init__(self, *, run_id: str, node_id: str, driver: bool) -> None:
        self.run_id = run_id
        self.node_id = node_id
        self.driver = driver
        self.run_actors: list[Any] = []

    def __call__(self, model_string: str, base_dir: Path, options: ModelOptions) -> Model:
        """The model `model_string` names, held by its actor."""
        own = per_run(model_string)
        actor = model_actor(
            model_string, base_dir, options, run_id=self.run_id, node_id=self.node_id, create=self.driver or not own
        )
        if own and self.driver:
            self.run_actors.append(actor)
        return RemoteModel(actor)
