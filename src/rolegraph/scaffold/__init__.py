"""``rolegraph init``: a new project folder that runs as it is.

```python
created = scaffold(Path("myproject"))  # workflow.yaml, library/, evals/, tests/, README.md
```

The files are copied from ``template/`` beside this module, with ``__NAME__``
replaced by the project's name; a ``.tmpl`` suffix is dropped (it keeps the
template's Python test out of the package: it is the project's, not rolegraph's).
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["PLACEHOLDER", "TEMPLATE_SUFFIX", "ScaffoldError", "scaffold"]

PLACEHOLDER = "__NAME__"
"""Replaced by the project's name in every template file."""
TEMPLATE_SUFFIX = ".tmpl"
"""Dropped from a template file's name when it is copied."""
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class ScaffoldError(ValueError):
    """The project cannot be created there (a bad name, or a folder that is not empty)."""


def _files(folder: Traversable, prefix: Path = Path()) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                found += _files(entry, prefix / entry.name)
        elif not entry.name.endswith(".pyc"):
            found.append((prefix / entry.name, entry.read_text(encoding="utf-8")))
    return found


def scaffold(target: Path) -> list[Path]:
    """Create a project in `target` (created, or an empty folder); the files written, in order.

    Raises:
        ScaffoldError: `target`'s name is not a plain name (a letter, then letters, digits, ``_``
            or ``-``), or `target` exists and is not an empty folder.
    """
    name = target.resolve().name
    if not _NAME.fullmatch(name):
        raise ScaffoldError(f"{name!r} is not a project name: start with a letter; letters, digits, _ and - only")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty: choose a new name")
    written = []
    for relative, text in _files(resources.files(__name__) / "template"):
        path = target / (relative.with_suffix("") if relative.suffix == TEMPLATE_SUFFIX else relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(PLACEHOLDER, name), encoding="utf-8")
        written.append(path)
    return written
