"""Live progress for terminals: a trace sink that prints steps, tool calls and tokens as they happen."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["ProgressPrinter"]


def _step_label(attributes: dict[str, Any]) -> str:
    step = attributes.get("rolegraph.step.id", "?")
    item = attributes.get("rolegraph.step.item")
    return f"{step}[{item}]" if item is not None else str(step)


class ProgressPrinter:
    """Prints one line per agent start/end, tool call and route decision.

    Plain lines rather than a live-updating panel: they read well in CI logs and
    pipes as well as in terminals, and parallel branches stay attributable.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._tokens = 0

    def emit(self, record: dict[str, Any]) -> None:
        """Print the record if it is one a person watching the run cares about."""
        event, kind = record.get("event"), record.get("kind")
        attributes: dict[str, Any] = record.get("attributes", {})
        if kind == "invoke_agent":
            label = f"{_step_label(attributes)} ({attributes.get('gen_ai.agent.name', '')})"
            if event == "span_start":
                self.console.print(f"[cyan]▶[/] {escape(label)}")
            else:
                status = record.get("status")
                mark = "[green]✔[/]" if status == "ok" else f"[red]✘ {escape(str(status))}[/]"
                tokens = attributes.get("rolegraph.aggregated.input_tokens", 0) + attributes.get(
                    "rolegraph.aggregated.output_tokens", 0
                )
                error = f" [red]{escape(record.get('error', ''))}[/]" if record.get("error") else ""
                self.console.print(
                    f"{mark} {escape(label)} [dim]{record.get('duration_s', 0):.1f}s, {tokens} tokens[/]{error}"
                )
        elif kind == "execute_tool" and event == "span_start":
            arguments = attributes.get("rolegraph.tool.arguments", "")
            try:
                arguments = json.dumps(json.loads(arguments), ensure_ascii=False)
            except (TypeError, ValueError):
                pass
            self.console.print(
                f"  [yellow]⚙[/] {escape(str(attributes.get('gen_ai.tool.name')))} {escape(arguments[:100])}"
            )
        elif kind == "chat" and event == "span_end":
            self._tokens += attributes.get("gen_ai.usage.input_tokens", 0) + attributes.get(
                "gen_ai.usage.output_tokens", 0
            )
        elif kind == "route" and event == "span_end" and attributes.get("rolegraph.route.taken"):
            when = escape(str(attributes.get("rolegraph.route.when")))
            self.console.print(f"[magenta]↺[/] {escape(record.get('name', ''))} (when {when})")

    @property
    def tokens(self) -> int:
        """Tokens used so far."""
        return self._tokens
