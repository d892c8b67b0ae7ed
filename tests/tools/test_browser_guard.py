"""The browser's network guard against a tripwire: no request, connection or datagram reaches a refused address.

Pages are served on 127.0.0.1 (allowed); the tripwire on 127.0.0.2 (refused)
records every TCP connection, even one that sends nothing, and every UDP
datagram. Each test drives the page to the point where Chromium has tried its
channel, then `Tripwire.flush` makes the record current and the test asserts it
is empty. One test reads Chromium's own net log, for what no loopback listener
can see: name lookups.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chromium import needs_chromium
from loopback import LoopbackServer, Reply
from rolegraph.tools.browser import CHROMIUM_ENV, BrowserArgs, BrowserTool, find_chromium
from rolegraph.tools.tool import ToolResult
from rolegraph.tools.urlpolicy import UrlPolicy
from tripwire import Tripwire

pytestmark = needs_chromium

HTML = {"Content-Type": "text/html; charset=utf-8"}
POLLS = 60  # at most 60 polls of 0.1 s for Chromium to try a channel (waits end early on what they wait for)


def page(body: str) -> Reply:
    return Reply(
        f"<!doctype html><html><head><title>Guard test</title></head><body>{body}</body></html>".encode(), headers=HTML
    )


def args(action: str, **kwargs: object) -> BrowserArgs:
    return BrowserArgs.model_validate({"action": action, **kwargs})


async def no_dns(host: str, port: int) -> list[str]:
    """The policy's resolver in these tests: no name resolves, so no test sends a DNS query from Python."""
    raise OSError(f"no DNS in tests ({host})")


shared_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[BrowserTool]:
    """A browser shared by the module, allowed to reach 127.0.0.1 only."""
    tool = BrowserTool(UrlPolicy(["127.0.0.1"], resolver=no_dns), action_timeout=10)
    try:
        yield tool
    finally:
        await tool.aclose()


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    """TCP and UDP on one port of 127.0.0.2, which the policy refuses."""
    with Tripwire("127.0.0.2") as wire:
        yield wire


async def blocked_eventually(tool: BrowserTool, needle: str, since: int) -> None:
    """Wait until the tool has listed a refused request containing `needle` (the page's script runs on its own)."""
    for _ in range(POLLS):
        if any(needle in line for line in tool.blocked[since:]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no blocked request mentions {needle}: {tool.blocked[since:]}")


async def contact_or_quiet(wire: Tripwire) -> None:
    """Give a channel the route handler never sees a few seconds to reach the tripwire; return at its first contact."""
    for _ in range(POLLS // 2):
        if wire.contacted():
            return
        await asyncio.sleep(0.1)


NAVIGATIONS = {
    "meta refresh": '<meta http-equiv="refresh" content="0;url={url}">',
    "location": '<script>location = "{url}";</script>',
    "iframe": '<iframe src="{url}"></iframe>',
    "object": '<object data="{url}"></object>',
    "embed": '<embed src="{url}">',
    "window.open": '<script>window.open("{url}");</script>',
}


@shared_loop
class TestNavigations:
    @pytest.mark.parametrize("kind", sorted(NAVIGATIONS))
    async def test_refused_navigation_opens_no_connection(
        self, kind: str, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire
    ) -> None:
        """A meta refresh, location=, iframe, object, embed or window.open to a refused address connects nowhere."""
        target = tripwire.url(f"/{kind.replace(' ', '-')}")
        web.routes["/"] = page("<p>A page that navigates away.</p>" + NAVIGATIONS[kind].format(url=target))
        since = len(browser.blocked)
        await browser(args("open", url=web.url("/")))
        await blocked_eventually(browser, target, since)
        assert tripwire.flush() == []

    async def test_clicked_link_opens_no_connection(
        self, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire
    ) -> None:
        """Clicking a link to a refused address is blocked and listed, and no connection reaches it."""
        target = tripwire.url("/clicked")
        web.routes["/"] = page(f'<p><a href="{target}">Forbidden link</a></p>')
        await browser(args("open", url=web.url("/")))
        result = await browser(args("click", text="Forbidden link"))
        assert f"{target}" in result.content
        assert tripwire.flush() == []


@shared_loop
class TestRefusedNavigationIsNoSource:
    async def test_script_navigation(self, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire) -> None:
        """A page that navigates itself to a refused address reads as an error naming the refusal, never a source."""
        web.routes["/"] = page(f'<p>Leaving.</p><script>location = "{tripwire.url("/away")}";</script>')
        result = await browser(args("open", url=web.url("/")))
        for _ in range(POLLS):  # the script's navigation may land after `open` has read the first page
            if result.is_error or result.data.get("url") != web.url("/"):
                break
            await asyncio.sleep(0.1)
            result = await browser(args("read"))
        assert result.is_error, result.content
        assert result.sources == []
        assert "did not load" in result.content
        assert "127.0.0.2 is a loopback address" in result.content

    async def test_clicked_link(self, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire) -> None:
        """Clicking a link to a refused address is an error observation with no source; later reads are errors too."""
        web.routes["/"] = page(f'<p><a href="{tripwire.url("/clicked")}">Forbidden link</a></p>')
        await browser(args("open", url=web.url("/")))
        clicked = await browser(args("click", text="Forbidden link"))
        assert clicked.is_error, clicked.content
        assert clicked.sources == []
        assert "127.0.0.2 is a loopback address" in clicked.content
        for action in ("read", "links", "scroll", "screenshot"):
            again = await browser(args(action))
            assert again.is_error, (action, again.content)
            assert again.sources == []

    async def test_failed_navigation(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """A click whose allowed target cannot be reached is an error saying so, with no source."""
        with socket.socket() as closed:  # bound, never listening: every connection to it is refused
            closed.bind(("127.0.0.1", 0))
            target = f"http://127.0.0.1:{closed.getsockname()[1]}/gone"
            web.routes["/"] = page(f'<p><a href="{target}">Dead link</a></p>')
            await browser(args("open", url=web.url("/")))
            clicked = await browser(args("click", text="Dead link"))
        assert clicked.is_error, clicked.content
        assert clicked.sources == []
        assert f"could not fetch {target}" in clicked.content

    async def test_open_still_reads_an_allowed_page(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """After refusals, an allowed page in a new tab is read and registered as usual."""
        web.routes["/"] = page("<p>An ordinary page.</p>")
        result = await browser(args("open", url=web.url("/")))
        assert not result.is_error, result.content
        assert [s.url for s in result.sources] == [web.url("/")]


WEBRTC = """<p id="state">ICE gathering started.</p><script>
const servers = [
  {urls: "stun:ADDRESS"},
  {urls: "turn:ADDRESS?transport=udp", username: "page-chosen", credential: "c"},
  {urls: "turn:ADDRESS?transport=tcp", username: "page-chosen", credential: "c"},
];
const done = [];
function gather(RTC, label) {
  const pc = new RTC({iceServers: servers});
  pc.createDataChannel("x");
  pc.onicegatheringstatechange = () => {
    if (pc.iceGatheringState !== "complete") return;
    done.push(label);
    document.getElementById("state").textContent = "ICE gathering complete: " + done.sort().join(" and ");
  };
  pc.createOffer().then((offer) => pc.setLocalDescription(offer));
}
gather(RTCPeerConnection, "page");
const frame = document.createElement("iframe");
document.body.append(frame);
gather(frame.contentWindow.RTCPeerConnection, "frame");
</script>"""


@shared_loop
class TestChannelsAroundTheRouteHandler:
    async def test_webrtc_sends_nothing(self, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire) -> None:
        """STUN and TURN (UDP and TCP) to a refused address, from the page and an about:blank frame, send nothing."""
        web.routes["/"] = page(WEBRTC.replace("ADDRESS", tripwire.address))
        result = await browser(args("open", url=web.url("/")))
        for _ in range(POLLS):
            if "ICE gathering complete: frame and page" in result.content or tripwire.contacted():
                break
            await asyncio.sleep(0.1)
            result = await browser(args("read"))
        assert tripwire.flush() == []
        assert "ICE gathering complete: frame and page" in result.content

    async def test_speculation_rules_send_nothing(
        self, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire
    ) -> None:
        """Speculation-rules prefetch and prerender (which Chromium fetches past the route handler) reach nothing."""
        rules = {
            "prefetch": [{"source": "list", "urls": [tripwire.url("/prefetch")]}],
            "prerender": [{"source": "list", "urls": [tripwire.url("/prerender")]}],
        }
        web.routes["/"] = page(f'<p>Speculating.</p><script type="speculationrules">{json.dumps(rules)}</script>')
        await browser(args("open", url=web.url("/")))
        await contact_or_quiet(tripwire)
        assert tripwire.flush() == []

    async def test_websockets_send_nothing(self, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire) -> None:
        """A WebSocket from the page is refused and listed; one from a worker (not routed) connects nowhere."""
        socket_url = tripwire.url("/socket", scheme="ws")
        worker = f'try {{ new WebSocket("{socket_url}"); }} catch (e) {{}}'
        web.routes["/"] = page(
            f"""<p>Sockets.</p><script>
            try {{ new WebSocket("{socket_url}"); }} catch (e) {{}}
            new Worker(URL.createObjectURL(new Blob([{json.dumps(worker)}])));
            </script>"""
        )
        since = len(browser.blocked)
        await browser(args("open", url=web.url("/")))
        await blocked_eventually(browser, f"websocket: {socket_url}", since)
        await contact_or_quiet(tripwire)
        assert tripwire.flush() == []

    async def test_link_prefetch_is_refused(
        self, browser: BrowserTool, web: LoopbackServer, tripwire: Tripwire
    ) -> None:
        """A <link rel=prefetch> to a refused address is a request like any other: refused, listed, never sent."""
        target = tripwire.url("/prefetched")
        web.routes["/"] = page(f'<p>Prefetching.</p><link rel="prefetch" href="{target}">')
        since = len(browser.blocked)
        await browser(args("open", url=web.url("/")))
        await blocked_eventually(browser, target, since)
        assert tripwire.flush() == []


# Every channel Chromium opens on its own, aimed at names (.test never resolves): what the net log must not show.
EVERY_CHANNEL = """<p id="state">Trying every channel.</p>
<link rel="dns-prefetch" href="http://dns-prefetch.test/">
<link rel="preconnect" href="http://preconnect.test/">
<link rel="prefetch" href="http://prefetch.test/">
<script type="speculationrules">
{"prefetch": [{"source": "list", "urls": ["http://speculation.test/a"]}],
 "prerender": [{"source": "list", "urls": ["http://speculation.test/b"]}]}
</script>
<img src="http://image.test/pixel.png">
<iframe src="http://frame.test/"></iframe>
<script>
const tried = [];
function note(what) {
  tried.push(what);
  if (tried.length === 2) document.getElementById("state").textContent = "Every channel tried.";
}
new WebTransport("https://webtransport.test:4433/").ready.then(() => note("webtransport"), () => note("webtransport"));
const worker = new Worker(URL.createObjectURL(new Blob([`
  const ws = new WebSocket("ws://websocket.test/");
  ws.onerror = ws.onclose = () => postMessage("closed");
`])));
worker.onmessage = () => note("websocket");
</script>"""

# Net-log event types that mean Chromium itself looked up a name or sent bytes.
LOOKUP = "HOST_RESOLVER_MANAGER_JOB"
CONNECT = "TCP_CONNECT"
UDP_SENT = "UDP_BYTES_SENT"


def read_net_log(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The (event type, parameters) pairs of a Chromium net log (``--log-net-log``), a cut-short one included."""
    text = path.read_text(encoding="utf-8")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # Chromium ended before closing the JSON: close it
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    return [(names[event["type"]], event.get("params") or {}) for event in log["events"]]


class TestChromiumHasNoNetwork:
    async def test_net_log_shows_no_lookup_and_no_connection(
        self, web: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a page trying every channel Chromium opens itself, its net log shows no lookup, connect or datagram."""
        log = tmp_path / "netlog.json"
        wrapper = tmp_path / "chromium-with-net-log"
        wrapper.write_text(
            f"#!/bin/sh\nexec {shlex.quote(find_chromium())} --log-net-log={shlex.quote(str(log))}"
            ' --net-log-capture-mode=Default "$@"\n'
        )
        wrapper.chmod(0o755)
        monkeypatch.setenv(CHROMIUM_ENV, str(wrapper))
        web.routes["/"] = page(EVERY_CHANNEL)
        tool = BrowserTool(UrlPolicy(["127.0.0.1"], resolver=no_dns), action_timeout=10)
        try:
            result: ToolResult = await tool(args("open", url=web.url("/")))
            for _ in range(POLLS):
                if "Every channel tried." in result.content:
                    break
                await asyncio.sleep(0.1)
                result = await tool(args("read"))
        finally:
            await tool.aclose()
        assert "Every channel tried." in result.content, result.content
        events = read_net_log(log)
        lookups = sorted({str(params.get("host")) for kind, params in events if kind == LOOKUP and "host" in params})
        connects = [params["address_list"] for kind, params in events if kind == CONNECT and "address_list" in params]
        assert (lookups, connects, sum(kind == UDP_SENT for kind, _ in events)) == ([], [], 0)
        # Not vacuous: Chromium did ask to resolve names (the channels were tried), and every answer was "not found".
        assert any(kind == "HOST_RESOLVER_MANAGER_REQUEST" for kind, _ in events)
