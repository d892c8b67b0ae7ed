"""The viewer's web app: a JSON API over the run folders and the trace index, and the static page.

```python
app = create_app(home_dir())          # then: uvicorn.run(app, host="127.0.0.1", port=8765)
```

Routes:

| route | answer |
|---|---|
| ``GET /`` | the page (``static/index.html``; its script and styles under ``/static``) |
| ``GET /api/runs`` | ``{"runs": [...]}``: the index's rows, newest first, with their lineage (replay, resumed); |
| | ``?limit=``, ``?workflow=``, ``?status=``, ``?since=``/``?until=`` (Unix time), ``?q=`` (span text) |
| ``GET /api/runs/{id}`` | one run's view: summary, lineage, spans, lanes, steps, graph and route decisions, usage |
| ``GET /api/runs/{id}/stamp`` | ``{"stamp": ..., "live": ...}``: poll it, refetch the view when it changes |
| ``GET /api/runs/{id}/spans/{span}`` | one span with every attribute |
| ``GET /api/runs/{id}/search?q=`` | the run's spans holding the text, each with a snippet |
| ``GET /api/runs/{id}/outputs/{name}`` | one output file: markdown as a safe tree with its citations, else text |
| ``GET /api/runs/{id}/sources/{source}`` | a source the run retrieved, the evidence quoted from it, who found it |
| ``GET /api/compare?a=&b=`` | two runs side by side: summaries, step diff, first divergence, outputs that differ |
| ``GET /api/evals``, ``GET /api/evals/{id}`` | the evals, and one eval's report (or its plan while unfinished) |
| ``GET /api/evals/{id}/plots/{metric}.svg`` | one metric's plot, the eval HTML's SVG (an image: no script runs in it) |

A run whose trace or summary cannot be read is listed with status ``damaged`` and
its ``problem`` (file, line and field); its own routes answer 422 with the reason.

Trace content and output files are untrusted (they hold web page and model
text): the API serves them as JSON only (markdown as a tree of whitelisted tags
with text leaves, never HTML), the page renders every value as text, and a
Content-Security-Policy without inline script stops anything that slipped
through from running. The host header is checked, so a web page cannot reach
the viewer through DNS rebinding.
"""

from __future__ import annotations

from collections.abc import Callable
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

from rolegraph.errors import DamagedFileError
from rolegraph.layout import Home
from rolegraph.traces.home_index import open_index
from rolegraph.traces.pricing import PriceTable
from rolegraph.viewer.compare import compare
from rolegraph.viewer.data import RunReader
from rolegraph.viewer.evals import EvalReader
from rolegraph.viewer.lineage import Lineage

__all__ = ["LOOPBACK_HOSTS", "STATIC", "create_app"]

STATIC = Path(__file__).parent / "static"
Endpoint = Callable[[Request], Response]
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


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


_STATUS_GROUPS = {"unfinished": {"unfinished", "running"}}
"""A status filter that stands for several statuses."""


def _number(request: Request, name: str) -> float | None:
    """A numeric query parameter (None when absent); ValueError when it is not a number."""
    value = request.query_params.get(name)
    return None if value in (None, "") else float(value)


def _wanted(entry: dict[str, Any], status: str | None) -> bool:
    """Whether a runs-list entry passes the status filter (``replay`` and ``resumed`` select by lineage)."""
    if not status:
        return True
    if status == "replay":
        return entry["lineage"]["replay_of"] is not None
    if status == "resumed":
        return bool(entry["lineage"]["resumed"])
    return entry["status"] in _STATUS_GROUPS.get(status, {status})


class _Api:
    """The JSON endpoints over one home. Sync methods: Starlette runs them in worker threads, so SQLite and
    file reads never block the event loop."""

    def __init__(self, home: Path, prices: PriceTable) -> None:
        self.home = Home(home)
        self.prices = prices
        self.reader = RunReader(self.home.runs, prices)
        self.evals = EvalReader(self.home.evals)

    def runs(self, request: Request) -> Response:
        try:
            limit = max(1, min(int(request.query_params.get("limit", "200")), 10_000))
            since, until = _number(request, "since"), _number(request, "until")
        except ValueError:
            return _bad("limit, since and until must be numbers")
        status = request.query_params.get("status") or None
        text = request.query_params.get("q", "").strip()
        with open_index(self.home.path, self.prices) as store:
            matches = store.search(text) if text else None
            rows = store.list_runs(
                limit=None if status else limit,  # the status filter applies once lineage is known
                workflow=request.query_params.get("workflow") or None,
                since=since,
                until=until,
                run_ids=None if matches is None else list(matches),
            )
        listed: list[dict[str, Any]] = []
        for row in rows:
            entry = row.as_dict()
            entry.pop("run_dir", None)  # the page needs no local paths
            lineage = self.reader.lineage(row.run_id) or Lineage()
            entry["status"] = lineage.status(row.status)
            entry["lineage"] = lineage.as_dict()
            if matches is not None:
                entry["matches"] = matches.get(row.run_id, 0)
            if _wanted(entry, status):
                listed.append(entry)
        return JSONResponse({"runs": listed[:limit]})

    def run(self, request: Request) -> Response:
        body = self.reader.view_json(request.path_params["run_id"])
        return _not_found("such run") if body is None else Response(body, media_type="application/json")

    def stamp(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        current = self.reader.stamp(run_id)
        if current is None:
            return _not_found("such run")
        view = self.reader.view(run_id)
        return JSONResponse({"stamp": current, "live": bool(view and view["live"])})

    def span(self, request: Request) -> Response:
        found = self.reader.span(request.path_params["run_id"], request.path_params["span_id"])
        return _not_found("such span") if found is None else JSONResponse(found)

    def search(self, request: Request) -> Response:
        found = self.reader.search(request.path_params["run_id"], request.query_params.get("q", ""))
        return _not_found("such run") if found is None else JSONResponse(found)

    def output(self, request: Request) -> Response:
        found = self.reader.output(request.path_params["run_id"], request.path_params["name"])
        return _not_found("such output") if found is None else JSONResponse(found)

    def source(self, request: Request) -> Response:
        found = self.reader.source(request.path_params["run_id"], request.path_params["source_id"])
        return _not_found("such source") if found is None else JSONResponse(found)

    def compare(self, request: Request) -> Response:
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            return _bad("give two runs: ?a=RUN&b=RUN")
        found = compare(self.reader, a, b)
        return _not_found("such runs") if found is None else JSONResponse(found)

    def eval_list(self, request: Request) -> Response:
        return JSONResponse({"evals": self.evals.list()})

    def eval_view(self, request: Request) -> Response:
        found = self.evals.view(request.path_params["eval_id"])
        return _not_found("such eval") if found is None else JSONResponse(found)

    def eval_plot(self, request: Request) -> Response:
        found = self.evals.plot(request.path_params["eval_id"], request.path_params["metric"])
        return _not_found("such plot") if found is None else Response(found, media_type="image/svg+xml")


def _damage_answered(runs: Path) -> Callable[[Endpoint], Endpoint]:
    """Wraps a run's endpoint: a damaged file of the run answers 422 with the reason (no local path), not 500."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        def answer(request: Request) -> Response:
            try:
                return endpoint(request)
            except DamagedFileError as exc:
                return JSONResponse({"error": exc.describe(runs), "damaged": True}, status_code=422)

        return answer

    return wrap


def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


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
    api = _Api(home, prices or PriceTable.load(Home(home).prices))
    reading = _damage_answered(Home(home).runs)
    routes = [
        Route("/", _index),
        Route("/api/runs", api.runs),
        Route("/api/runs/{run_id}", reading(api.run)),
        Route("/api/runs/{run_id}/stamp", reading(api.stamp)),
        Route("/api/runs/{run_id}/spans/{span_id}", reading(api.span)),
        Route("/api/runs/{run_id}/search", reading(api.search)),
        Route("/api/runs/{run_id}/outputs/{name}", reading(api.output)),
        Route("/api/runs/{run_id}/sources/{source_id:path}", reading(api.source)),
        Route("/api/compare", reading(api.compare)),
        Route("/api/evals", api.eval_list),
        Route("/api/evals/{eval_id}", api.eval_view),
        Route("/api/evals/{eval_id}/plots/{metric}.svg", api.eval_plot),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(_SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    return Starlette(routes=routes, middleware=middleware)
