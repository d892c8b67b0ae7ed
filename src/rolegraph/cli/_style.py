"""One help style for every command: flags without a type, arguments named in capitals, a one-line summary.

Typer builds each command's parameters itself; `StyledGroup` (the root command's class) walks the whole
command tree once and gives every parameter the house style, so no command module has to remember it:

- a boolean flag shows no ``<bool>`` type (``--json`` takes no value);
- an argument is named by its metavar in capitals (``WORKFLOW``, ``RUN``), never by its Python name;
- the usage line writes a required argument bare and an optional one in brackets, as git and click do
  (``eval [OPTIONS] [WORKFLOW]``, ``run [OPTIONS] WORKFLOW``), not typer's ``{WORKFLOW}``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["StyledGroup", "restyle"]


class _UsageArgument(TyperArgument):
    """A typer argument whose usage piece follows the click convention: ``NAME``, ``[NAME]``, ``NAME...``."""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        piece = name if self.required else f"[{name}]"
        return [piece if self.nargs == 1 else f"{piece}..."]


def restyle(command: Any) -> None:
    """Give `command` and everything under it the house style (idempotent).

    Args:
        command: A command typer built (typer's vendored click types are private, hence Any).
    """
    # The --help option is built on first use and then kept: build it now, to style it like every flag.
    help_option = command.get_help_option(SimpleNamespace(help_option_names=["--help"]))
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if isinstance(param, TyperOption) and param.is_bool_flag and param.metavar is None:
            param.metavar = ""  # a flag takes no value: no "<bool>" beside it
        elif isinstance(param, TyperArgument):
            if param.metavar is None and param.name:
                param.metavar = param.name.upper()
            # Typer builds its arguments itself; the subclass only overrides how the usage line shows them.
            param.__class__ = _UsageArgument
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            restyle(sub)


class StyledGroup(TyperGroup):
    """The root ``rolegraph`` group: restyles its command tree as typer builds it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        restyle(self)
