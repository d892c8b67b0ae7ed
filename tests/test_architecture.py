"""The package's shape: layers import downwards only, no import cycle, no private name across packages,
small modules and functions (docs/architecture.md draws the layers)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "rolegraph"

# Which top-level parts of rolegraph each part may import (besides itself and the leaf modules).
LEAVES = {"appending", "errors", "imports", "layout", "retry", "sqlite_wal", "tokens"}
ALLOWED = {
    "traces": set(),
    "models": {"traces"},
    "tools": {"models", "traces"},  # tool specs are models.messages, the lingua franca of providers
    "agents": {"models", "tools", "traces"},
    "workflows": {"agents", "models", "traces"},
    "research": set(),  # the pipeline's function steps: plain functions of JSON data
    "runtime": {"workflows", "agents", "models", "tools", "traces"},
    "durability": {"runtime", "workflows", "agents", "models", "tools", "traces"},
    "distributed": {"runtime", "workflows", "agents", "models", "tools", "traces"},  # executors past one process
    "workflow": {"durability", "distributed", "runtime", "workflows", "models", "traces"},  # picks the executor
    "testing": {"models", "tools", "agents", "traces"},
    "evals": {"workflow", "runtime", "workflows", "durability", "agents", "models", "tools", "traces"},
    "viewer": {"traces", "workflows", "runtime", "evals"},
    "scaffold": set(),  # copies template files: it imports nothing of rolegraph
    "cli": {
        "workflow",
        "runtime",
        "workflows",
        "durability",
        "agents",
        "models",
        "tools",
        "traces",
        "evals",
        "viewer",
        "testing",
        "scaffold",
        "distributed",
    },
}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
# Modules still over the limit, each with the reason; the list only ever shrinks.
LONG_MODULES: dict[str, str] = {}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _runtime_imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """Module-level `rolegraph.*` imports (not those under TYPE_CHECKING), with the names imported."""
    tree = _tree(path)
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("rolegraph"):
                yield sub.module, [alias.name for alias in sub.names]
            elif isinstance(sub, ast.Import):
                for alias in sub.names:
                    if alias.name.startswith("rolegraph"):
                        yield alias.name, []


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


class TestLayers:
    def test_imports_point_down(self) -> None:
        """Each part imports only the parts below it (the engine never imports durability, traces nothing)."""
        wrong = []
        for name, path in _modules():
            part = _part(name)
            if part not in ALLOWED:
                continue
            for target, _ in _runtime_imports(path):
                other = _part(target)
                if other and other != part and other not in LEAVES and other not in ALLOWED[part]:
                    wrong.append(f"{name} imports {target}")
        assert wrong == []

    def test_no_import_cycle(self) -> None:
        """No two modules import each other, directly or around a loop (type-only imports aside)."""
        graph: nx.DiGraph[str] = nx.DiGraph()
        known = {name for name, _ in _modules()}
        for name, path in _modules():
            for target, names in _runtime_imports(path):
                for candidate in [f"{target}.{n}" for n in names] + [target]:
                    if candidate in known and candidate != name:
                        graph.add_edge(name, candidate)
                        break
        cycles = [c for c in nx.simple_cycles(graph) if not all(m.endswith("__init__") for m in c)]
        # A package's __init__ re-exporting its modules is not a cycle of concepts.
        cycles = [c for c in cycles if not any(PACKAGE.joinpath(*m.split(".")[1:], "__init__.py").is_file() for m in c)]
        assert cycles == []

    def test_no_private_name_crosses_a_package(self) -> None:
        """A `_private` name is imported only inside its own package."""
        wrong = []
        for name, path in _modules():
            for target, names in _runtime_imports(path):
                same_package = target.rsplit(".", 1)[0] == name.rsplit(".", 1)[0] or target.startswith(name + ".")
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private and not same_package:
                    wrong.append(f"{name} imports {', '.join(private)} from {target}")
        assert wrong == []


class TestSizes:
    @pytest.mark.parametrize(("name", "path"), list(_modules()), ids=[n for n, _ in _modules()])
    def test_module_size(self, name: str, path: Path) -> None:
        """No module over ~600 lines, unless listed with its reason."""
        relative = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_MODULE_LINES or relative in LONG_MODULES, f"{relative}: {lines} lines"

    def test_the_exemptions_are_still_needed(self) -> None:
        """A module listed as long really is, so the list cannot go stale."""
        for relative in LONG_MODULES:
            path = PACKAGE / relative
            assert path.is_file() and len(path.read_text(encoding="utf-8").splitlines()) > MAX_MODULE_LINES

    def test_function_size(self) -> None:
        """No function body over ~80 lines (the body: a CLI command's signature of declared options is not logic)."""
        long = []
        for _, path in _modules():
            for node in ast.walk(_tree(path)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
                    lines = (node.end_lineno or node.lineno) - body[0].lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
        assert long == []
