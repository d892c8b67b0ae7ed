"""`rolegraph tools` and `rolegraph tool`: listing the built-ins and running one from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loopback import LoopbackServer, Reply
from recorded import from_arxiv_record
from rolegraph.cli import app
from rolegraph.tools.fetch import web_source_id

ARTICLE = (
    b"<html><head><title>Adapters</title><meta name='author' content='Ada Lovelace'></head><body><article>"
    b"<p>Adapters insert small trainable layers into a frozen network, so fine-tuning touches few weights.</p>"
    b"</article></body></html>"
)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("ROLEGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ROLEGRAPH_ALLOW_HOSTS", raising=False)
    return CliRunner()


class TestToolsCommand:
    """rolegraph tools."""

    def test_json_lists_every_builtin_with_its_schema(self, runner: CliRunner) -> None:
        """--json prints each built-in's name, description, argument schema and timeout."""
        result = runner.invoke(app, ["tools", "--json"])
        assert result.exit_code == 0, result.output
        described = json.loads(result.stdout)
        assert [d["name"] for d in described] == [
            "library_search",
            "read_document",
            "fetch_url",
            "web_search",
            "browser",
            "arxiv_search",
            "openalex_search",
            "crossref_search",
            "semantic_scholar_search",
            "paper_search",
        ]
        assert all(set(d) == {"name", "description", "parameters", "timeout"} for d in described)
        by_name = {d["name"]: d["parameters"] for d in described}
        assert by_name["fetch_url"]["required"] == ["url"]
        assert set(by_name["web_search"]["properties"]) == {
            "query",
            "max_results",
            "region",
            "timelimit",
            "safesearch",
            "backend",
        }

    def test_table(self, runner: CliRunner) -> None:
        """Without --json, a table names every tool."""
        result = runner.invoke(app, ["tools"])
        assert result.exit_code == 0
        for name in ("library_search", "read_document", "fetch_url", "web_search"):
            assert name in result.stdout


class TestToolCommand:
    """rolegraph tool NAME --args JSON."""

    def test_fetch_from_loopback(self, runner: CliRunner, web: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
        """With ROLEGRAPH_ALLOW_HOSTS=127.0.0.1, fetch_url reads the local page; --json gives the whole result."""
        monkeypatch.setenv("ROLEGRAPH_ALLOW_HOSTS", "127.0.0.1")
        web.routes["/a"] = Reply(ARTICLE, headers={"Content-Type": "text/html"})
        url = web.url("/a")
        result = runner.invoke(app, ["tool", "fetch_url", "--args", json.dumps({"url": url}), "--json"])
        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout)
        assert set(printed) == {"content", "data", "sources", "is_error"}
        assert printed["is_error"] is False
        [source] = printed["sources"]
        assert (source["id"], source["title"], source["authors"], source["url"]) == (
            web_source_id(url),
            "Adapters",
            ["Ada Lovelace"],
            url,
        )
        assert "small trainable layers" in printed["content"]

    def test_plain_output(self, runner: CliRunner, web: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without --json the observation goes to stdout, the source ids to stderr."""
        monkeypatch.setenv("ROLEGRAPH_ALLOW_HOSTS", "127.0.0.1")
        web.routes["/a"] = Reply(ARTICLE, headers={"Content-Type": "text/html"})
        result = runner.invoke(app, ["tool", "fetch_url", "--args", json.dumps({"url": web.url("/a")})])
        assert result.exit_code == 0
        assert result.stdout.startswith(f"fetch_url {web.url('/a')} → source {web_source_id(web.url('/a'))}")
        assert f"1 source(s): {web_source_id(web.url('/a'))}" in result.stderr

    def test_scholarly_search_from_loopback(
        self, runner: CliRunner, web: LoopbackServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """arxiv_search runs by name against a recorded arXiv answer served where ROLEGRAPH_ARXIV_URL points."""
        recorded = from_arxiv_record("arxiv_id_2104.12255v1.json")
        web.routes["/api/query"] = Reply(recorded.body, headers={"Content-Type": recorded.content_type})
        monkeypatch.setenv("ROLEGRAPH_ALLOW_HOSTS", f"127.0.0.1:{web.port}")
        monkeypatch.setenv("ROLEGRAPH_ARXIV_URL", web.url("/api/query"))
        result = runner.invoke(app, ["tool", "arxiv_search", "--args", '{"query": "id:2104.12255"}', "--json"])
        assert result.exit_code == 0, result.output
        [source] = json.loads(result.stdout)["sources"]
        assert (source["id"], source["authors"], source["year"]) == (
            "arxiv:2104.12255",
            ["Quan Thoi Minh Nguyen"],
            2021,
        )

    def test_refused_url_exits_1(self, runner: CliRunner, trap: LoopbackServer) -> None:
        """A refused URL is the tool's error: exit 1, the refusal printed, no request made."""
        result = runner.invoke(app, ["tool", "fetch_url", "--args", json.dumps({"url": trap.url("/")})])
        assert result.exit_code == 1
        assert "127.0.0.2 is a loopback address" in result.stdout
        assert trap.requests == []

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["tool", "fetch_urll"], "did you mean 'fetch_url'?"),
            (["tool", "fetch_url", "--args", "{not json"], "--args is not valid JSON"),
            (["tool", "fetch_url", "--args", "[1]"], "--args must be a JSON object"),
            (["tool", "fetch_url", "--args", "{}"], "fetch_url: url: Field required"),
            (["tool", "web_search", "--args", '{"query": "q", "max_results": 99}'], "max_results"),
            (["tool", "library_search", "--args", '{"query": "q"}'], "needs a library"),
        ],
    )
    def test_bad_input_exits_2(self, runner: CliRunner, argv: list[str], message: str) -> None:
        """Unknown tools, malformed or invalid arguments and a missing library exit 2 with what is wrong."""
        result = runner.invoke(app, argv)
        assert result.exit_code == 2
        assert message in " ".join(result.stderr.split())

    def test_library_tool(self, runner: CliRunner) -> None:
        """--library loads a notes folder for the library tools."""
        library = Path(__file__).resolve().parent.parent / "examples" / "library"
        result = runner.invoke(
            app, ["tool", "library_search", "--library", str(library), "--args", '{"query": "LoRA"}', "--json"]
        )
        assert result.exit_code == 0, result.output
        assert "hu2021lora" in [s["id"] for s in json.loads(result.stdout)["sources"]]
