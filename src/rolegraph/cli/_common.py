"""What the command line's modules share: the app, consoles, exit codes, and run and workflow look-ups."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from rolegraph import __version__
from rolegraph.cli._style import StyledGroup
from rolegraph.errors import DamagedFileError, ModelNotAvailableError, RolegraphError, SpecError
from rolegraph.layout import Home, RunFolder, is_run_id
from rolegraph.runtime.executor import ExecutorFactory
from rolegraph.traces.home_index import open_index
from rolegraph.traces.pricing import PricesError, PriceTable
from rolegraph.traces.store import TraceStore
from rolegraph.workflow import Workflow
from rolegraph.workflows.spec import Budget

app = typer.Typer(
    name="rolegraph",
    cls=StyledGroup,
    rich_markup_mode="markdown",
    help="Multi-agent research workflows in YAML, every step traced.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        print(f"rolegraph {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit.")
    ] = False,
) -> None:
    """Multi-agent research workflows in YAML, every step traced."""


out = Console(highlight=False)

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BUDGET = 3
EXIT_CANCELLED = 130


def report_spec_error(exc: SpecError) -> typer.Exit:
    """Print every problem of `exc`; the exit to raise (bad input)."""
    for problem in exc.problems:
        err.print(f"[red]error[/] {escape(str(problem))}", markup=True, highlight=False, soft_wrap=True)
    err.print(f"{len(exc.problems)} problem(s) found.")
    return typer.Exit(EXIT_BAD_INPUT)


def load_workflow(file: Path, *, machine: bool = False, privacy: PrivacyChoice | None = None) -> Workflow:
    """Load a workflow, or print its problems and exit 2 (see `Workflow.load`)."""
    try:
        return Workflow.load(file, machine=machine, privacy=None if privacy is None else "local_only")
    except SpecError as exc:
        raise report_spec_error(exc) from None


class PrivacyChoice(StrEnum):
    """What ``--privacy`` takes."""

    LOCAL_ONLY = "local_only"


PrivacyOption = Annotated[
    PrivacyChoice | None,
    typer.Option(
        help="local_only: refuse every hosted model and web tool (as settings.privacy: local_only), --model too;"
        " only embedded models and servers on 127.0.0.1 may see the workflow's content."
    ),
]

ExecutorOption = Annotated[
    str | None,
    typer.Option(
        help="Where the steps run, replacing the workflow's settings.executor: local (this process), ray (the"
        " cluster at RAY_ADDRESS, or a new local one on 127.0.0.1) or ray://host:port."
        " Ray needs: pip install 'rolegraph[ray]'."
    ),
]


def executor_factory(name: str | None, workflow: Workflow | None = None) -> ExecutorFactory:
    """The executor `--executor` names, else `workflow`'s ``settings.executor`` (else local); exit 2 with
    what to do if the name names none or Ray is missing."""
    from rolegraph.distributed.choose import executor_for
    from rolegraph.distributed.cluster import RayNotInstalled

    try:
        return workflow.executor(name) if workflow is not None else executor_for(name)
    except (ValueError, RayNotInstalled) as exc:
        err.print(f"[red]error[/] --executor: {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """``--input name=value`` pairs as a dict; exit 2 on a malformed pair."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            err.print(f"[red]error[/] --input expects name=value, got {escape(repr(pair))}")
            raise typer.Exit(EXIT_BAD_INPUT)
        values[name.strip()] = value
    return values


async def _cancellable(work: Coroutine[Any, Any, T]) -> T:
    """Await `work`; the first SIGINT or SIGTERM cancels it (so it can checkpoint and shut down), a second exits."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    received = 0

    def on_signal() -> None:
        nonlocal received
        received += 1
        if received > 1:
            os._exit(EXIT_CANCELLED)  # "now" means now: no cleanup; the run store is consistent at every commit
        if task is not None:
            task.cancel()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # no signals off the main thread or on Windows
            pass
    try:
        return await work
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run_async(work: Coroutine[Any, Any, T], *, error_exit: int, on_interrupt: Callable[[], None] | None = None) -> T:
    """Run `work` to completion, turning rolegraph's errors and Ctrl-C/SIGTERM into messages and exit codes.

    Standard output is the command's result, printed once the work is done: whatever writes to it
    meanwhile (a Ray driver prints the cluster's errors, such as a lost node, there) goes to standard
    error instead, so ``--json`` output stays one JSON document.
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return asyncio.run(_cancellable(work))
    except SpecError as exc:
        raise report_spec_error(exc) from None
    except DamagedFileError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except ModelNotAvailableError as exc:  # a missing key, package, file or server: setup, so bad input
        err.print(f"[red]error[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except RolegraphError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(error_exit) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print("[yellow]interrupted[/]")
        if on_interrupt is not None:
            on_interrupt()
        raise typer.Exit(EXIT_CANCELLED) from None


def print_json_document(data: Any) -> None:
    """Print `data` as the command's one JSON document, then point the process's standard output at
    standard error: native code (a Ray driver's C++ logging, flushed at exit) can write nothing after it."""
    print(json.dumps(data, indent=2), flush=True)
    with contextlib.suppress(OSError, ValueError):  # no real file descriptors (a test runner's capture)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


class RunIdSink:
    """A trace sink that remembers the run id of the records it sees (to name an interrupted run)."""

    def __init__(self) -> None:
        self.run_id: str | None = None

    def emit(self, record: dict[str, Any]) -> None:
        """Keep the record's run id."""
        if self.run_id is None:
            self.run_id = record.get("run_id")

    def hint(self) -> None:
        """Say how to resume the run (if one started)."""
        if self.run_id is not None:
            err.print(f"resume with: rolegraph resume {self.run_id}")


MaxTokensOption = Annotated[int | None, typer.Option("--max-tokens", min=1, help="Budget: model tokens for the run.")]
MaxCostOption = Annotated[
    float | None, typer.Option("--max-cost", min=0.0, help="Budget: USD of model calls for the run (price table).")
]
MaxWallOption = Annotated[float | None, typer.Option("--max-wall", min=0.0, help="Budget: seconds of wall time.")]
MaxToolCallsOption = Annotated[int | None, typer.Option("--max-tool-calls", min=0, help="Budget: tool calls.")]
CacheOption = Annotated[
    bool | None,
    typer.Option(
        "--cache/--no-cache",
        help="Answer model calls made before (same model and request, not sampled) from the model-call cache"
        " in $ROLEGRAPH_HOME, or never; default: the workflow's settings.cache.",
    ),
]
MaxIterationsOption = Annotated[
    int | None, typer.Option("--max-iterations", min=1, help="Budget: agent loop iterations (model calls).")
]


def budget_from(
    max_tokens: int | None,
    max_cost: float | None,
    max_wall: float | None,
    max_tool_calls: int | None,
    max_iterations: int | None,
) -> Budget | None:
    """The run budget the command-line options set (None if they set none); exit 2 on a bad value."""
    given = {
        "max_tokens": max_tokens,
        "max_cost_usd": max_cost,
        "max_wall_s": max_wall,
        "max_tool_calls": max_tool_calls,
        "max_iterations": max_iterations,
    }
    if all(v is None for v in given.values()):
        return None
    try:
        return Budget(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        err.print(f"[red]error[/] bad budget: {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def exit_for(status: str) -> int:
    """The exit code of a finished run: 0 completed, 3 budget exceeded, 130 cancelled, else 1."""
    return {"completed": 0, "budget_exceeded": EXIT_BUDGET, "cancelled": EXIT_CANCELLED}.get(status, EXIT_FAILED)


def run_started(run_dir: Path) -> str:
    """When the run began (ISO 8601 UTC, from its ``run.json``), or "" if unknown."""
    return str(RunFolder(run_dir).read_summary().get("started", ""))


def find_run(run_id: str) -> Path:
    """The folder of run `run_id` (an id, a unique prefix or ``last``); exit 2 if there is none.

    Only folders named by a run id are runs: the argument is matched against their names, so it
    never reaches a path itself.
    """
    runs = Home.from_env().runs
    candidates = sorted(p for p in runs.glob("*") if p.is_dir() and is_run_id(p.name)) if runs.is_dir() else []
    if run_id == "last" and candidates:
        # Ids only have whole seconds before their random suffix: runs of one second sort at random by name.
        return max(candidates, key=lambda p: (run_started(p), p.name))
    matches = [p for p in candidates if p.name.startswith(run_id)]
    if len(matches) == 1:
        return matches[0]
    problem = f"no run {run_id!r} in {runs}" if not matches else f"{run_id!r} is ambiguous"
    err.print(f"[red]error[/] {escape(problem)}", soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def damage_exits() -> Iterator[None]:
    """Inside: a damaged run file (`DamagedFileError`) becomes one line on stderr and exit 2."""
    try:
        yield
    except DamagedFileError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None


RunArgument = Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix, or 'last').")]
PricesOption = Annotated[
    Path | None, typer.Option("--prices", help="A price file (model: {input, output} USD per 1M tokens).")
]


def load_prices(path: Path | None) -> PriceTable:
    """The price table: built-ins, ``$ROLEGRAPH_HOME/prices.yaml``, then `path`; exit 2 on a bad file."""
    if path is not None and not path.is_file():
        err.print(f"[red]error[/] {escape(str(path))}: no such price file")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        return PriceTable.load(Home.from_env().prices, path)
    except PricesError as exc:
        err.print(f"[red]error[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_BAD_INPUT) from None


def format_cost(value: float | None) -> str:
    """USD with four decimals, or ``?`` when unknown."""
    return "?" if value is None else f"${value:.4f}"


def read_run_json(run_dir: Path) -> dict[str, Any]:
    """A run's ``run.json`` summary, or {} if it is missing or unreadable."""
    return RunFolder(run_dir).read_summary()


def open_store(prices: Path | None = None) -> TraceStore:
    """The run index, brought up to date with the run folders (new, changed, crashed, damaged or deleted runs)."""
    return open_index(Home.from_env().path, load_prices(prices))
