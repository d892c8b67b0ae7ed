"""The viewer's web app: a JSON API over the run folders and the trace index, and the static page.

```python
app = create_app(home_dir())          # then: uvicorn.run(app, host="127.0.0.1", port=8765)
```

Routes:

| route | answer |
|---|---|
| ``GET /`` | the page (``static/index.html``; its script and styles under ``/static``) |
| ``GET /api/runs`` | ``{"runs": [...]}``: the index's rows, newest first (``?limit=``, ``?workflow=``) |
| ``GET /api/runs/{id}`` | one run's view: summary, spans, lanes, steps, graph, usage, sources |
| ``GET /api/runs/{id}/stamp`` | ``{"stamp": ..., "live": ...}``: poll it, refetch the view when it changes |
| ``GET /api/runs/{id}/spans/{span}`` | one span with every attribute |

Trace content is untrusted (it holds web page text): the API serves it as JSON
only, the page renders it as text, and a Content-Security-Policy without inline
script stops anything that slipped through from running. The host header is
checked, so a web page cannot reach the viewer through DNS rebinding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolegraph.layout import Home
from rolegraph.traces.pricing import PriceTable
from rolegraph.traces.store import TraceStore
from rolegraph.viewer.data import RunReader

__all__ = ["LOOPBACK_HOSTS", "STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
"""Host names the viewer answers to when bound to a loopback address."""

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
        b" base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _SecurityHeaders:
    """Adds the CSP and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": f"no {what}"}, status_code=404)


def create_app(
    home: Path,
    prices: PriceTable | None = None,
    *,
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS,
) -> Starlette:
    """The viewer app over the runs kept in `home` (``home/runs``, indexed in ``home/index.sqlite``).

    Args:
        home: The rolegraph home (``$ROLEGRAPH_HOME``).
        prices: Prices for the cost figures (default: the built-in table and ``home/prices.yaml``).
        allowed_hosts: Host header values to answer (``("*",)`` for any: when serving beyond loopback).
    """
    prices = prices or PriceTable.load(Home(home).prices)
    reader = RunReader(Home(home).runs, prices)

    # Sync endpoints: Starlette runs them in worker threads, so SQLite and file reads never block the loop.
    def runs(request: Request) -> Response:
        try:
            limit = max(1, min(int(request.query_params.get("limit", "200")), 10_000))
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, status_code=400)
        workflow = request.query_params.get("workflow") or None
        with TraceStore(Home(home).index, prices=prices) as store:
            store.sync(Home(home).runs)
            rows = store.list_runs(limit=limit, workflow=workflow)
        listed: list[dict[str, Any]] = []
        for row in rows:
            entry = row.as_dict()
            entry.pop("run_dir", None)  # the page needs no local paths
            listed.append(entry)
        return JSONResponse({"runs": listed})

    def run(request: Request) -> Response:
        body = reader.view_json(request.path_params["run_id"])
        return _not_found("such run") if body is None else Response(body, media_type="application/json")

    def stamp(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        current = reader.stamp(run_id)
        if current is None:
            return _not_found("such run")
        view = reader.view(run_id)
        return JSONResponse({"stamp": current, "live": bool(view and view["live"])})

    def span(request: Request) -> Response:
        found = reader.span(request.path_params["run_id"], request.path_params["span_id"])
        return _not_found("such span") if found is None else JSONResponse(found)

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/runs", runs),
        Route("/api/runs/{run_id}", run),
        Route("/api/runs/{run_id}/stamp", stamp),
        Route("/api/runs/{run_id}/spans/{span_id}", span),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(_SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    return Starlette(routes=routes, middleware=middleware)
