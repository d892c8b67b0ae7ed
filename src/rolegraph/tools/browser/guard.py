"""The network guard: the URL policy applied to every request a browser context makes, and nothing sent around it.

Two layers, and the second is why the first can be trusted:

- **Requests.** Every request a page makes (document, frame, script, image,
  ``fetch()``, worker, beacon) reaches `NetworkGuard.route`, which checks its
  URL with the `UrlPolicy`. A refused request is aborted before anything is sent
  and listed in `NetworkGuard.blocked`; an allowed one is sent by the guard
  itself, through `PolicyTransport`, to the address the policy checked, and the
  answer handed to the page. Redirects come back through the same checks, hop
  by hop. WebSockets are refused outright.
- **Connections.** The route handler sees requests, not sockets, and Chromium
  opens some on its own: a navigation preconnects to its target before it is
  intercepted (a 0-byte TCP connection even when the request is then refused),
  speculation rules prefetch and prerender past the interception, a worker's
  WebSocket is not routed, WebRTC sends STUN and TURN, and Chromium looks up
  its own service names in the background. So Chromium is left no network:
  `GUARD_FLAGS` map every host name and every IP address to "not found" inside
  it (``--host-resolver-rules`` matches IP literals too), so its network stack
  resolves and reaches nothing, TURN over TCP included; and the profile
  preference `WEBRTC_PREFERENCES` (written by `session.py`) stops WebRTC's UDP
  (STUN, TURN over UDP), whose sockets bypass the resolver. The switch
  ``--force-webrtc-ip-handling-policy`` does not do this: only content_shell and
  the old headless mode read it, and Chromium ignores it.

What reaches a network is what the guard sent, through its transport.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx

from rolegraph.errors import ToolError
from rolegraph.tools.urlpolicy import PolicyTransport, UrlPolicy, UrlRefused

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page, Request, Route, WebSocketRoute

__all__ = ["GUARD_FLAGS", "MAX_REDIRECTS", "WEBRTC_PREFERENCES", "NetworkGuard"]

GUARD_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND",  # Chromium resolves no name and reaches no address itself
    "--no-proxy-server",  # an environment proxy would be one more way out
    "--disable-quic",
    "--dns-prefetch-disable",
)
"""Launch flags that leave Chromium no network of its own; every byte a page gets comes through the guard."""

WEBRTC_PREFERENCES: dict[str, Any] = {"webrtc": {"ip_handling_policy": "disable_non_proxied_udp"}}
"""Profile preferences: WebRTC sends no UDP (its TCP needs the resolver, which `GUARD_FLAGS` leave no answer)."""

MAX_REDIRECTS = 5
"""Most redirect hops followed for one request (and for one `open`)."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Hop-by-hop headers (RFC 9110) and the ones httpx sets itself from what it sends.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_SKIPPED_TYPES = frozenset({"media"})  # audio and video: large, and never text


class _Blocked(UrlRefused):
    """A refusal already listed in `NetworkGuard.blocked`."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class NetworkGuard:
    """Checks and sends every request of a browser context; see the module docstring.

    Args:
        policy: Which URLs may be requested.
        transport: The httpx transport that sends allowed requests to their checked
            address (default: a real connection; tests pass `httpx.MockTransport`).
        max_bytes: Largest response a page may load; a larger one fails that request.
        timeout: Seconds for connecting, and between bytes while reading.
    """

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_bytes: int = 20_000_000,
        timeout: float = 15.0,
    ) -> None:
        self.policy = policy
        self.transport = transport
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.blocked: list[str] = []
        """Every request refused so far, with the reason."""
        self._client: httpx.AsyncClient | None = None
        self._redirects: dict[Page, str] = {}
        self._failures: dict[Page, str] = {}

    async def install(self, context: BrowserContext) -> None:
        """Route every request and WebSocket of `context` through the guard."""
        await context.route("**/*", self.route)
        await context.route_web_socket("**/*", self._refuse_websocket)

    def take_redirect(self, page: Page) -> str | None:
        """The URL a top-level redirect of `page` pointed to (navigate there afresh), once."""
        return self._redirects.pop(page, None)

    def failure(self, page: Page) -> str | None:
        """Why the last top-level navigation of `page` was refused or failed, or None if it was answered."""
        return self._failures.get(page)

    def forget(self, page: Page) -> None:
        """Drop what the guard knows about `page` (it was closed)."""
        self._redirects.pop(page, None)
        self._failures.pop(page, None)

    async def aclose(self) -> None:
        """Close the HTTP client; a later request opens a new one."""
        client, self._client = self._client, None
        self._redirects.clear()
        self._failures.clear()
        if client is not None:
            await client.aclose()

    async def _allowed(self, url: str, what: str) -> str | None:
        """None if the policy allows `url`; otherwise the reason, also recorded as blocked."""
        try:
            await self.policy.check(url)
        except ToolError as exc:
            reason = f"{what}: {exc}"
            self.blocked.append(reason)
            return reason
        return None

    async def route(self, route: Route, request: Request) -> None:
        """Check `request` against the policy; send it ourselves, hop by hop, so redirects are checked too."""
        page = _top_level_page(request)
        try:
            if request.resource_type in _SKIPPED_TYPES:
                await route.abort("blockedbyclient")
                return
            answer = await self._follow(request, page)
            if answer is None:
                await route.abort("aborted")  # a top-level redirect, navigated to afresh by the caller
                return
            if page is not None:
                self._failures.pop(page, None)
            await route.fulfill(status=answer.status, headers=answer.headers, body=answer.body)
        except ToolError as exc:  # refused (now or at connect time), unreachable, or too large
            refused = isinstance(exc, UrlRefused)
            if refused and not isinstance(exc, _Blocked):  # refused at connect time (the name now resolves elsewhere)
                self.blocked.append(f"{request.resource_type}: {exc}")
            if page is not None:
                self._failures[page] = str(exc)
            with contextlib.suppress(Exception):
                await route.abort("blockedbyclient" if refused else "failed")
        except Exception:  # the page or context went away mid-request: nothing is waiting for an answer
            with contextlib.suppress(Exception):
                await route.abort("failed")

    async def _follow(self, request: Request, page: Page | None) -> _Answer | None:
        """The answer to `request` after its allowed redirects; None for a top-level redirect to navigate to.

        Raises:
            _Blocked: The URL or a redirect hop was refused (and listed in `blocked`).
            UrlRefused: The transport refused the address it was about to connect to.
            ToolError: The request failed, or there were too many redirects.
        """
        url = request.url
        reason = await self._allowed(url, request.resource_type)
        if reason is not None:
            raise _Blocked(reason)
        for _ in range(MAX_REDIRECTS + 1):
            answer = await self._send(request, url)
            location = answer.headers.get("location")
            if answer.status not in _REDIRECTS or not location:
                return answer
            url, previous = urljoin(url, location), url
            reason = await self._allowed(url, f"redirect from {previous}")
            if reason is not None:
                raise _Blocked(reason)
            if page is not None:
                # A top-level redirect is navigated to afresh, so every hop is intercepted and the page's URL is right.
                self._redirects[page] = url
                return None
        reason = f"{request.url}: more than {MAX_REDIRECTS} redirects"
        self.blocked.append(reason)
        raise _Blocked(reason)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=PolicyTransport(self.policy, self.transport),
                follow_redirects=False,  # every hop goes back through `_follow`'s checks
                trust_env=False,  # an environment proxy would resolve names behind the policy's back
                timeout=httpx.Timeout(self.timeout),
            )
        return self._client

    async def _send(self, request: Request, url: str) -> _Answer:
        """Send the page's request to the address the policy checked (never resolved again), body capped."""
        headers = {
            name: value
            for name, value in (await request.all_headers()).items()
            if not name.startswith(":") and name.lower() not in _HOP_HEADERS
        }
        client = self._http()
        try:
            sent = client.build_request(request.method, url, headers=headers, content=request.post_data_buffer)
            response = await client.send(sent, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise ToolError(f"{url} is larger than {self.max_bytes:,} bytes")
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise ToolError(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
        answer: dict[str, str] = {}
        for name, value in response.headers.multi_items():
            key = name.lower()
            if key in _HOP_HEADERS or key == "content-encoding":  # httpx has decoded the body
                continue
            answer[key] = f"{answer[key]}\n{value}" if key in answer else value
        return _Answer(response.status_code, answer, bytes(body))

    async def _refuse_websocket(self, ws: WebSocketRoute) -> None:
        self.blocked.append(f"websocket: {ws.url}: WebSockets are not opened by the browser tool")
        await ws.close()


def _top_level_page(request: Request) -> Page | None:
    """The page `request` navigates, if it is a top-level navigation of a page Playwright already knows."""
    if not request.is_navigation_request():
        return None
    try:
        frame = request.frame
    except Exception:  # a popup's first navigation comes before its frame exists
        return None
    return frame.page if frame.parent_frame is None else None
