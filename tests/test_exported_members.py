"""The public API: `rolegraph.__all__` is sorted, complete and importable (after httpx's test of the same name)."""

from __future__ import annotations

import importlib.metadata
import inspect

import rolegraph


class TestExportedMembers:
    def test_all_is_sorted(self) -> None:
        """`__all__` is kept sorted, so a diff shows exactly what joined or left the public API."""
        assert rolegraph.__all__ == sorted(rolegraph.__all__)

    def test_every_public_name_is_exported(self) -> None:
        """Every public name the package's top level defines or imports is in `__all__`, and nothing else is."""
        public = {
            name for name, value in vars(rolegraph).items() if not name.startswith("_") and not inspect.ismodule(value)
        }
        assert public | {"__version__"} == set(rolegraph.__all__)

    def test_every_exported_name_resolves(self) -> None:
        """Each name in `__all__` is an attribute of the package and says where it lives."""
        for name in rolegraph.__all__:
            member = getattr(rolegraph, name)
            if name != "__version__":
                assert member.__module__.startswith("rolegraph."), name

    def test_version_comes_from_the_package_metadata(self) -> None:
        """`__version__` is the installed distribution's version, not a string typed by hand."""
        assert rolegraph.__version__ == importlib.metadata.version("rolegraph")

    def test_the_documented_entry_points(self) -> None:
        """What the README teaches is reachable from the top level."""
        for name in ("load", "Workflow", "resume", "replay", "resolve_model", "Budget", "BudgetExceeded"):
            assert name in rolegraph.__all__
