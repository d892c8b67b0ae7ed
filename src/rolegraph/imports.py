"""Import paths (``package.module:attribute``): the one way a workflow names Python code it runs.

A function step names its function this way, and the workflow file's folder is
searched first, so a ``my_steps.py`` beside the workflow is found without
installing anything::

    steps:
      count: {function: "my_steps:count_words", args: {text: "{{ inputs.text }}"}}
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ImportPathError", "import_object", "is_import_path", "on_search_path"]

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")


class ImportPathError(ValueError):
    """An import path cannot be resolved; the message says why and what to do."""


def is_import_path(ref: str) -> bool:
    """Whether `ref` has the form ``package.module:attribute`` (the attribute may be dotted)."""
    return _IMPORT_PATH.match(ref) is not None


def import_object(ref: str, search_path: Path | None = None) -> object:
    """The object `ref` (``package.module:attribute``) names.

    Args:
        ref: The import path.
        search_path: A folder searched first (the workflow file's folder). A module of the
            same name imported earlier from elsewhere is imported again from here.

    Raises:
        ImportPathError: The path is malformed, the module cannot be imported, or it has no
            such attribute (with a did-you-mean where one is close).
    """
    if not is_import_path(ref):
        raise ImportPathError(f"{ref!r} is not an import path; write 'module:function', e.g. 'my_steps:count_words'")
    module_name, _, attr_path = ref.partition(":")
    with _searching(search_path, module_name):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
                raise ImportPathError(
                    f"{ref!r}: no module named {exc.name!r}; put {exc.name}.py next to the workflow file "
                    "or install it in this environment"
                ) from None
            raise ImportPathError(f"{ref!r}: importing {module_name!r} failed: {exc}") from None
        except Exception as exc:  # user code can fail in any way; report it rather than crash the load
            raise ImportPathError(f"{ref!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    value: object = module
    for part in attr_path.split("."):
        if not hasattr(value, part):
            names = [n for n in dir(value) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ImportPathError(f"{ref!r}: {module_name!r} has no attribute {attr_path!r}{hint}")
        value = getattr(value, part)
    return value


@contextmanager
def on_search_path(folder: Path | None) -> Iterator[None]:
    """`folder` first on ``sys.path`` for the duration, if it is not there already (None: nothing changes).

    `import_object` does this for its own import; a caller that does more with what it imports
    (builds a tool class that imports a module beside it) keeps the folder there throughout.
    """
    entry = str(folder.resolve()) if folder is not None else None
    if entry is None or entry in sys.path:
        yield
        return
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # the folder's files may be newer than the import system's caches
    try:
        yield
    finally:
        sys.path.remove(entry)


@contextmanager
def _searching(folder: Path | None, module_name: str) -> Iterator[None]:
    """`folder` first on ``sys.path`` while importing, and a same-named module from elsewhere forgotten."""
    if folder is not None:
        _forget_shadowed(folder, module_name)
    with on_search_path(folder):
        yield


def _forget_shadowed(folder: Path, module_name: str) -> None:
    """Drop an imported module that a file in `folder` should provide instead.

    Two workflows in different folders may each keep a ``my_tools.py`` beside them; without
    this, the second workflow loaded in a process would get the first one's module from
    ``sys.modules``.
    """
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is None:
        return
    for candidate in (folder / f"{top}.py", folder / top / "__init__.py"):
        if candidate.is_file():
            current = getattr(loaded, "__file__", None)
            if current is None or Path(current).resolve() != candidate.resolve():
                for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
                    del sys.modules[name]
            return
