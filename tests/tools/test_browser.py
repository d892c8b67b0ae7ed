"""The browser tool against loopback servers, with a real Chromium: rendering, navigation, refusals, limits.

Pages are served on 127.0.0.1 (allowed through the policy in each test); the
`trap` server on 127.0.0.2 is never allowed, and each test that aims at it
checks it received nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from chromium import needs_chromium
from loopback import LoopbackServer, Reply, Request
from rolegraph.errors import ToolError
from rolegraph.tools.browser import CHROMIUM_ENV, BrowserArgs, BrowserTool, find_chromium
from rolegraph.tools.fetch import web_source_id
from rolegraph.tools.tool import ToolResult
from rolegraph.tools.untrusted import END, START
from rolegraph.tools.urlpolicy import UrlPolicy

pytestmark = needs_chromium

HTML = {"Content-Type": "text/html; charset=utf-8"}
REPO = Path(__file__).resolve().parents[2]

STATIC = b"""<!doctype html><html><head><title>Adapters explained</title></head><body>
<article><h1>Low-rank adapters</h1>
<p>Low-rank adapters freeze the pretrained weights and train two small matrices per layer.</p>
<p>The update can be merged into the weights after training, so inference costs nothing extra.</p>
<p><a href="/second">Read the second part</a> or <a href="/about">about us</a>.</p>
</article></body></html>"""

SECOND = b"""<!doctype html><html><head><title>Second part</title></head><body><article>
<h1>Second part</h1><p>Quantised adapters keep the base model in four bits while training in sixteen.</p>
</article></body></html>"""

RENDERED = b"""<!doctype html><html><head><title>Rendered</title></head><body><main id="app"></main>
<script>
document.getElementById("app").innerHTML =
  "<h1>Rendered by script</h1><p>This sentence exists only after the page's JavaScript has run.</p>" +
  "<button onclick=\\"location.href='/second'\\">Continue reading</button>";
</script></body></html>"""

TALL = b"""<!doctype html><html><head><title>Tall</title></head><body>
<p style="height: 3000px">The first screen of the page.</p>
<p>Text at the very bottom of the tall page.</p>
<script>
addEventListener("scroll", () => {
  const more = document.createElement("p");
  more.textContent = "Loaded after scrolling.";
  document.body.append(more);
}, {once: true});
</script></body></html>"""


def page(body: bytes) -> Reply:
    return Reply(body, headers=HTML)


def args(action: str, **kwargs: object) -> BrowserArgs:
    return BrowserArgs.model_validate({"action": action, **kwargs})


# One event loop for the module, so one launched browser serves every test that can share it
# (the classes using the shared `browser` fixture are marked to run in it).
shared_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserTool]:
    """A browser shared by the module, allowed to reach 127.0.0.1 (not the trap on 127.0.0.2)."""
    tool = BrowserTool(UrlPolicy(["127.0.0.1"]), artifacts_dir=tmp_path_factory.mktemp("artifacts"), action_timeout=10)
    try:
        yield tool
    finally:
        await tool.aclose()


def chromium_children() -> list[int]:
    """Pids of Chromium processes descended from this test process."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.rpartition(")")
        fields = rest.split()
        if fields[0] == "Z":  # a zombie runs nothing
            continue
        parents[int(entry)] = int(fields[1])
        names[int(entry)] = name.partition("(")[2]
    ours = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                changed = True
    return [pid for pid in ours if "chrom" in names.get(pid, "")]


def profiles(folder: Path) -> list[Path]:
    """The Chromium profile folders the browser tool has made in `folder`."""
    return sorted(folder.glob("rolegraph-chromium-*"))


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def keep_artifact(path: Path) -> None:
    """Copy `path` to the repository's test-artifacts/ folder (gitignored), when there is a writable one."""
    keep = REPO / "test-artifacts"
    if keep.is_dir() and os.access(keep, os.W_OK):
        shutil.copy(path, keep / "browser-screenshot.png")


class TestFindChromium:
    def test_environment_wins(self, tmp_path: Path) -> None:
        """$ROLEGRAPH_CHROMIUM is used before the constructor's path and PATH."""
        binary = tmp_path / "my-chromium"
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
        assert find_chromium("/nonexistent", environ={CHROMIUM_ENV: str(binary)}) == str(binary)

    def test_missing_says_how_to_install(self) -> None:
        """A named binary that does not exist is a ToolError naming the setting."""
        with pytest.raises(ToolError, match=CHROMIUM_ENV):
            find_chromium(environ={CHROMIUM_ENV: "/nonexistent/chromium"})

    async def test_missing_is_an_error_observation(self, web: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
        """With no Chromium anywhere, a call is an error observation saying apt-get install chromium."""
        monkeypatch.setenv("PATH", "/nonexistent")
        monkeypatch.delenv(CHROMIUM_ENV, raising=False)
        tool = BrowserTool(UrlPolicy([f"127.0.0.1:{web.port}"]))
        result = await tool(args("open", url=web.url("/")))
        await tool.aclose()
        assert result.is_error
        assert "apt-get install chromium" in result.content

    def test_system_chromium_is_found(self) -> None:
        """This machine (and CI) has Chromium on PATH."""
        assert Path(find_chromium(environ={})).is_file()


@shared_loop
class TestReading:
    async def test_open_static_page(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """open returns the title, URL and main text, framed untrusted, and registers the page as a source."""
        web.routes["/"] = page(STATIC)
        result = await browser(args("open", url=web.url("/")))
        assert not result.is_error, result.content
        source_id = web_source_id(web.url("/"))
        number = result.data["page"]
        assert result.content.startswith(f"browser page {number}: {web.url('/')} → source {source_id}")
        assert f"{START} from {web.url('/')}" in result.content
        assert "Title: Adapters explained" in result.content
        assert "freeze the pretrained weights" in result.content
        assert result.content.rstrip().endswith(f"{END}\nCite this page as {source_id}.")
        [source] = result.sources
        assert (source.id, source.title, source.url, source.tool) == (
            source_id,
            "Adapters explained",
            web.url("/"),
            "browser",
        )
        assert "merged into the weights" in source.text
        assert result.data == {
            "page": number,
            "url": web.url("/"),
            "title": "Adapters explained",
            "id": source_id,
            "chars": len(source.text),
        }

    async def test_javascript_rendered_text(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """Text written by the page's script is read (it is not in the HTML fetch_url would get)."""
        web.routes["/app"] = page(RENDERED)
        assert b"exists only after" not in RENDERED.split(b"<script>")[0]
        result = await browser(args("open", url=web.url("/app")))
        assert not result.is_error, result.content
        assert "This sentence exists only after the page's JavaScript has run." in result.content

    async def test_read_rereads_the_last_page(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """read without a page id reads the last page used; an unknown page id is an error."""
        web.routes["/"] = page(STATIC)
        await browser(args("open", url=web.url("/")))
        result = await browser(args("read", max_chars=200))
        assert not result.is_error
        assert "Low-rank adapters" in result.content
        assert (await browser(args("read", page=999))).content.startswith("browser: page 999 is not open")

    async def test_read_before_open(self) -> None:
        """read before any open is an error observation saying to open a page first."""
        result = await BrowserTool(UrlPolicy())(args("read"))
        assert result == ToolResult.error("browser: no page is open; use action=open with a url first")


@shared_loop
class TestNavigation:
    async def test_links_and_click(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """links lists visible links as [n] text → url; click by text navigates and returns the new page."""
        web.routes["/"] = page(STATIC)
        web.routes["/second"] = page(SECOND)
        await browser(args("open", url=web.url("/")))
        links = await browser(args("links"))
        assert f"[1] Read the second part → {web.url('/second')}" in links.content
        assert f"[2] about us → {web.url('/about')}" in links.content
        clicked = await browser(args("click", text="Read the second part"))
        assert not clicked.is_error, clicked.content
        assert clicked.data["url"] == web.url("/second")
        assert "four bits" in clicked.content
        assert clicked.sources[0].id == web_source_id(web.url("/second"))

    async def test_click_a_button(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """A button rendered by script is clicked by its text."""
        web.routes["/app"] = page(RENDERED)
        web.routes["/second"] = page(SECOND)
        await browser(args("open", url=web.url("/app")))
        clicked = await browser(args("click", text="Continue reading"))
        assert clicked.data["url"] == web.url("/second"), clicked.content

    async def test_click_missing_text(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """Clicking text that is not on the page is an error observation naming the text."""
        web.routes["/"] = page(STATIC)
        await browser(args("open", url=web.url("/")))
        result = await browser(args("click", text="Subscribe now"))
        assert result.is_error
        assert "no link or button with the text 'Subscribe now'" in result.content

    async def test_scroll_returns_new_text(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """scroll returns only lines not shown before (here: loaded by scrolling) and says when it reaches the end."""
        web.routes["/tall"] = page(TALL)
        opened = await browser(args("open", url=web.url("/tall")))
        assert "Loaded after scrolling." not in opened.content
        result = await browser(args("scroll"))
        assert not result.is_error, result.content
        assert "Loaded after scrolling." in result.content
        assert "The first screen" not in result.content
        assert result.data["at_end"] is False
        for _ in range(5):
            if result.data["at_end"]:
                break
            result = await browser(args("scroll"))
        assert result.data["at_end"] is True

    async def test_screenshot_is_a_png(self, browser: BrowserTool, web: LoopbackServer) -> None:
        """screenshot saves a PNG under artifacts_dir and returns its path."""
        assert browser.artifacts_dir is not None
        web.routes["/"] = page(STATIC)
        await browser(args("open", url=web.url("/")))
        result = await browser(args("screenshot"))
        assert not result.is_error, result.content
        path = Path(result.data["path"])
        assert path.parent == browser.artifacts_dir
        assert is_png(path)
        keep_artifact(path)


@shared_loop
class TestPolicy:
    async def test_subresources_from_refused_hosts_are_blocked(
        self, browser: BrowserTool, web: LoopbackServer, trap: LoopbackServer
    ) -> None:
        """An image and a fetch() aimed at a refused host never reach it, and the observation says so."""
        web.routes["/"] = page(
            f"""<!doctype html><html><head><title>Leaky</title></head><body><p>A page that phones elsewhere.</p>
            <img src="{trap.url("/pixel.png")}">
            <script>fetch("{trap.url("/beacon")}").catch(() => {{}});</script></body></html>""".encode()
        )
        result = await browser(args("open", url=web.url("/")))
        assert not result.is_error, result.content
        assert "A page that phones elsewhere." in result.content
        assert "Blocked 2 request(s) by the URL policy" in result.content
        assert trap.url("/pixel.png") in result.content
        assert trap.url("/beacon") in result.content
        assert trap.requests == []

    async def test_redirects_are_checked_every_hop(
        self, browser: BrowserTool, web: LoopbackServer, trap: LoopbackServer
    ) -> None:
        """A page redirecting (even on its second hop) to a refused host never reaches it; allowed hops land."""
        web.routes["/hop1"] = Reply(b"", 302, {"Location": "/hop2"})
        web.routes["/hop2"] = Reply(b"", 302, {"Location": trap.url("/x")})
        web.routes["/ok"] = Reply(b"", 301, {"Location": "/second"})
        web.routes["/second"] = page(SECOND)
        web.routes["/img"] = page(f'<p>Image redirect.</p><img src="{web.url("/hop1")}">'.encode())
        refused = await browser(args("open", url=web.url("/hop1")))
        assert refused.is_error
        assert f"redirect from {web.url('/hop2')}" in refused.content
        landed = await browser(args("open", url=web.url("/ok")))
        assert landed.data["url"] == web.url("/second"), landed.content
        image = await browser(args("open", url=web.url("/img")))
        assert "Blocked 1 request(s)" in image.content
        assert trap.requests == []

    async def test_requests_go_to_the_checked_address(self, web: LoopbackServer) -> None:
        """Names are resolved by the policy only: a name no DNS knows loads, served from the address it checked."""

        async def resolve(host: str, port: int) -> list[str]:
            assert host == "docs.test"
            return ["127.0.0.1"]

        web.routes["/"] = page(b'<title>Named</title><p>Served by name.</p><img src="/logo.png">')
        tool = BrowserTool(UrlPolicy(["docs.test"], resolver=resolve))
        try:
            result = await tool(args("open", url=f"http://docs.test:{web.port}/"))
        finally:
            await tool.aclose()
        assert not result.is_error, result.content
        assert "Served by name." in result.content
        assert web.paths() == ["/", "/logo.png"]
        assert {r.headers["Host"] for r in web.requests} == {f"docs.test:{web.port}"}

    @pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "data:text/html,<p>hi</p>"])
    async def test_refused_schemes(self, url: str) -> None:
        """open refuses every scheme but http(s), before any browser starts."""
        tool = BrowserTool(UrlPolicy(["127.0.0.1"]))
        result = await tool(args("open", url=url))
        assert result.is_error
        assert "only http and https URLs may be fetched" in result.content
        assert tool.browser is None

    async def test_refused_host(self, browser: BrowserTool, trap: LoopbackServer) -> None:
        """open of a host the policy refuses is an error observation; the host gets nothing."""
        result = await browser(args("open", url=trap.url("/")))
        assert result.is_error
        assert "127.0.0.2 is a loopback address" in result.content
        assert trap.requests == []


class TestTransport:
    async def test_allowed_requests_go_through_the_injected_transport(self) -> None:
        """Every allowed request reaches the transport, pinned to the checked address; no server is needed."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            if request.url.path == "/style.css":
                return httpx.Response(200, text="p { color: black }", headers={"Content-Type": "text/css"})
            return httpx.Response(
                200,
                text='<title>Mocked</title><link rel="stylesheet" href="/style.css"><p>Served by a function.</p>',
                headers={"Content-Type": "text/html"},
            )

        async def resolve(host: str, port: int) -> list[str]:
            return ["93.184.216.34"]

        tool = BrowserTool(UrlPolicy(resolver=resolve), transport=httpx.MockTransport(handler))
        try:
            result = await tool(args("open", url="http://docs.example/"))
        finally:
            await tool.aclose()
        assert not result.is_error, result.content
        assert "Served by a function." in result.content
        assert result.data["url"] == "http://docs.example/"
        assert [(str(r.url), r.headers["host"]) for r in seen] == [
            ("http://93.184.216.34/", "docs.example"),
            ("http://93.184.216.34/style.css", "docs.example"),
        ]


class TestLimits:
    async def test_hanging_page_times_out(self, web: LoopbackServer) -> None:
        """A page that never answers is a timeout error observation, and the tool still works afterwards."""

        def hang(request: Request) -> Reply:
            web.release.wait(10)
            return page(b"late")

        web.routes["/hang"] = hang
        web.routes["/"] = page(STATIC)
        tool = BrowserTool(UrlPolicy([f"127.0.0.1:{web.port}"]), action_timeout=1.5)
        try:
            result = await tool(args("open", url=web.url("/hang")))  # launching is not counted in the 1.5 s
            assert result.is_error
            assert result.content == "browser: open did not finish within 1.5s"
            tool.action_timeout = 10  # a slow test machine must not fail the recovery check
            after = await tool(args("open", url=web.url("/")))
            assert not after.is_error, after.content
        finally:
            web.release.set()
            await tool.aclose()

    async def test_page_pool_cap(self, web: LoopbackServer) -> None:
        """With max_pages=1, two concurrent opens both succeed, one after the other, never two pages at once."""
        first_started = threading.Event()
        let_first_finish = threading.Event()

        def slow(request: Request) -> Reply:
            first_started.set()
            let_first_finish.wait(10)
            return page(b"<title>A</title><p>The slow page.</p>")

        web.routes["/a"] = slow
        web.routes["/b"] = page(b"<title>B</title><p>The quick page.</p>")
        tool = BrowserTool(UrlPolicy([f"127.0.0.1:{web.port}"]), max_pages=1)
        try:
            first = asyncio.create_task(tool(args("open", url=web.url("/a"))))
            await asyncio.to_thread(first_started.wait, 10)
            second = asyncio.create_task(tool(args("open", url=web.url("/b"))))
            await asyncio.sleep(0)  # let the second call reach the pool
            assert tool.pages == [1]
            assert "/b" not in web.paths()
            let_first_finish.set()
            a, b = await asyncio.gather(first, second)
            assert (a.is_error, b.is_error) == (False, False), (a.content, b.content)
            assert (a.data["page"], b.data["page"]) == (1, 2)
            assert tool.pages == [2]
            assert web.paths() == ["/a", "/b"]
            assert (await tool(args("read", page=1))).is_error
        finally:
            let_first_finish.set()
            await tool.aclose()

    async def test_aclose_twice_leaves_no_chromium(self, web: LoopbackServer) -> None:
        """aclose ends the browser process; a second aclose is harmless; a later call relaunches."""
        web.routes["/"] = page(STATIC)
        tool = BrowserTool(UrlPolicy([f"127.0.0.1:{web.port}"]))
        others = set(chromium_children())  # the module's shared browser, if it is running
        assert not (await tool(args("open", url=web.url("/")))).is_error
        launched = tool.browser
        assert launched is not None and launched.is_connected()
        assert set(chromium_children()) - others
        await tool.aclose()
        await tool.aclose()
        assert not launched.is_connected()
        assert tool.browser is None
        for _ in range(100):  # the driver reaps Chromium just after it disconnects
            if not set(chromium_children()) - others:
                break
            await asyncio.sleep(0.05)
        assert set(chromium_children()) - others == set()

    async def test_profile_is_fresh_and_removed(
        self, web: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each launch gets a new profile folder holding the WebRTC preference; aclose removes it."""
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        web.routes["/"] = page(STATIC)
        tool = BrowserTool(UrlPolicy([f"127.0.0.1:{web.port}"]))
        try:
            assert not (await tool(args("open", url=web.url("/")))).is_error
            [profile] = profiles(tmp_path)
            preferences = json.loads((profile / "Default" / "Preferences").read_text())
            assert preferences["webrtc"]["ip_handling_policy"] == "disable_non_proxied_udp"
        finally:
            await tool.aclose()
        assert profiles(tmp_path) == []

    async def test_aclose_under_cancellation(self, web: LoopbackServer) -> None:
        """Cancelling a run mid-action and then closing (as Workflow.run's finally does) ends the browser."""
        started = threading.Event()

        def hang(request: Request) -> Reply:
            started.set()
            web.release.wait(10)
            return page(b"late")

        web.routes["/hang"] = hang
        tool = BrowserTool(UrlPolicy([f"127.0.0.1:{web.port}"]))
        call = asyncio.create_task(tool(args("open", url=web.url("/hang"))))
        await asyncio.to_thread(started.wait, 10)
        launched = tool.browser
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await tool.aclose()
        web.release.set()
        assert launched is not None and not launched.is_connected()
