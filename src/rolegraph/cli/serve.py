"""``rolegraph serve``: the web viewer of recorded runs, on a local port."""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
import webbrowser
from typing import Annotated

import typer
from rich.markup import escape

from rolegraph.cli._common import PricesOption, app, err, load_prices
from rolegraph.layout import home_dir
from rolegraph.viewer.app import LOOPBACK_HOSTS, create_app

__all__ = ["allowed_hosts", "can_show_pages", "is_loopback", "serve"]


def can_show_pages() -> bool:
    """Whether a graphical browser can open here (a desktop session, macOS, Windows).

    On a headless machine `webbrowser` would start a text browser (lynx, w3m)
    in the terminal the server logs to, so the URL is only printed there.
    """
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or ``localhost``) only accepts connections from this machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> tuple[str, ...]:
    """The Host header values a viewer bound to the loopback address `host` answers: the usual loopback
    names, and the address it was told to bind (``127.0.0.2`` is as local as ``127.0.0.1``)."""
    bound = host.strip("[]")
    return tuple(dict.fromkeys((*LOOPBACK_HOSTS, bound, f"[{bound}]" if ":" in bound else bound)))


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; beyond 127.0.0.1 anyone who can reach it sees every trace."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0 picks a free one).")] = 8765,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a web browser (where there is a desktop).")
    ] = True,
    prices: PricesOption = None,
) -> None:
    """Browse recorded runs in a web page: waterfall of spans, step graph, span details, live updates."""
    import uvicorn  # imported here: the other commands never pay for the web stack

    loopback = is_loopback(host)
    if not loopback:
        err.print(
            f"[yellow]warning[/] serving on {escape(host)}, not loopback: anyone who can reach this address"
            " can read every trace (prompts, tool results, page text). Use --host 127.0.0.1 to keep it local."
        )
    viewer = create_app(home_dir(), load_prices(prices), allowed_hosts=allowed_hosts(host) if loopback else ("*",))
    server = uvicorn.Server(uvicorn.Config(viewer, host=host, port=port, log_level="warning"))
    shown = f"[{host}]" if ":" in host else host

    def announce() -> None:
        # The bound port is known once the server started (port 0 picks one).
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if not server.started:
            return
        bound = next((s.getsockname()[1] for srv in server.servers for s in srv.sockets), port)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{bound}/"
        err.print(f"rolegraph viewer on {url} (runs in {escape(str(home_dir() / 'runs'))}); Ctrl-C stops it")
        if open_browser and can_show_pages():
            webbrowser.open(url)

    threading.Thread(target=announce, name="rolegraph-serve-announce", daemon=True).start()
    server.run()
