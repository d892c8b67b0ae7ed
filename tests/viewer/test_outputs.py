"""A run's outputs for the viewer: markdown as a safe tree with its citations, sources with their evidence."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from rolegraph.layout import RunFolder
from rolegraph.viewer import create_app
from rolegraph.viewer.outputs import markdown_tree
from viewer.conftest import Gallery

HOSTILE = """\
# Title <script>window.__xss=1</script>

Text <img src=x onerror="window.__xss=2"> [a link](javascript:alert(1)), [ftp](ftp://example.org/f)
and [fine](https://example.org/p?a=1).

<div onclick="x()">raw block</div>

[1] Someone (2020). *A paper*. `real2020`
"""


def tags(nodes: list[Any]) -> list[str]:
    """Every tag in a tree, depth first."""
    found = []
    for node in nodes:
        if isinstance(node, dict):
            found.append(node["t"])
            found += tags(node.get("c", []))
    return found


def texts(nodes: list[Any]) -> str:
    """The text of a tree."""
    return "".join(n if isinstance(n, str) else texts(n.get("c", [])) for n in nodes)


@pytest.fixture
def client(gallery: Gallery) -> Iterator[TestClient]:
    """The viewer over the gallery (Host: 127.0.0.1)."""
    with TestClient(create_app(gallery.home), base_url="http://127.0.0.1") as client:
        yield client


def get(client: TestClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.json()


class TestMarkdownTree:
    def test_report_with_numbered_citations(self) -> None:
        """Headings, paragraphs and emphasis become nodes; [n] marks resolve through the reference list."""
        text = "# Report\n\nLoRA is cheap. [1][2]\n\n## References\n\n[1] A (2020). *P*. `hu2021lora`\n[2] B. `gone`\n"
        tree, numbers = markdown_tree(text, known={"hu2021lora"})
        assert numbers == {"1": "hu2021lora", "2": "gone"}
        assert tree[0] == {"t": "h1", "c": ["Report"]}
        assert tree[1] == {
            "t": "p",
            "c": [
                "LoRA is cheap. ",
                {"t": "cite", "source": "hu2021lora", "resolved": True, "c": ["[1]"]},
                {"t": "cite", "source": "gone", "resolved": False, "c": ["[2]"]},
            ],
        }
        assert tree[2] == {"t": "h2", "c": ["References"]}
        assert tags([tree[3]]) == ["p", "cite", "em", "code", "br", "cite", "code"]

    def test_unresolved_and_bracketed_ids(self) -> None:
        """``[?id]`` is an unresolved citation; ``[id]`` of a known source cites it; other brackets stay text."""
        tree, _ = markdown_tree("See [?nowhere] and [hu2021lora], not [this].", known={"hu2021lora"})
        [paragraph] = tree
        cites = [n for n in paragraph["c"] if isinstance(n, dict)]
        assert [(c["source"], c["resolved"]) for c in cites] == [("nowhere", False), ("hu2021lora", True)]
        assert texts(tree) == "See [?nowhere] and [hu2021lora], not [this]."

    def test_hostile_markdown_stays_text(self) -> None:
        """Raw HTML is text, javascript: and ftp: links are no links, an https link stays; no other tag appears."""
        tree, _ = markdown_tree(HOSTILE, known={"real2020"})
        assert set(tags(tree)) <= {"h1", "p", "a", "span", "cite", "em", "code", "br"}
        assert "<script>window.__xss=1</script>" in texts(tree)
        assert '<img src=x onerror="window.__xss=2">' in texts(tree)
        assert '<div onclick="x()">raw block</div>' in texts(tree)
        assert "[a link](javascript:alert(1))" in texts(tree)  # not even parsed as a link
        links = [n for n in tree[1]["c"] if isinstance(n, dict) and n["t"] in ("a", "span")]
        assert links == [
            {"t": "span", "c": ["ftp"]},
            {"t": "a", "href": "https://example.org/p?a=1", "c": ["fine"]},
        ]


class TestOutputApi:
    def test_report_and_json_outputs(self, client: TestClient, gallery: Gallery) -> None:
        """The demo's report comes as a tree with its title and citations; its sources file as indented JSON."""
        run = gallery.demo.run_id
        report = get(client, f"/api/runs/{run}/outputs/report")
        assert (report["kind"], report["file"], report["cut"]) == ("markdown", "report.md", False)
        assert report["tree"][0] == {"t": "h1", "c": ["Low-rank adaptation"]}
        assert report["references"] == {"1": "hu2021lora", "2": "dettmers2023qlora"}
        cites = [n for n in report["tree"][1]["c"] if isinstance(n, dict)]
        assert cites == [{"t": "cite", "source": "hu2021lora", "resolved": True, "c": ["[1]"]}]
        sources = get(client, f"/api/runs/{run}/outputs/sources")
        assert sources["kind"] == "json"
        # Both researchers' sources, in the order the parallel branches happened to record them.
        assert {s["id"] for s in json.loads(sources["text"])} >= {"hu2021lora", "dettmers2023qlora"}
        assert client.get(f"/api/runs/{run}/outputs/nothing").status_code == 404

    def test_an_output_outside_the_run_folder_is_not_served(self, gallery: Gallery, tmp_path: Path) -> None:
        """A run.json naming a file outside its run folder (tampered, or a link) gets a 404, not the file."""
        folder = tmp_path / "runs" / gallery.demo.run_id
        shutil.copytree(gallery.demo.run_dir, folder)
        secret = tmp_path / "secret.md"
        secret.write_text("# secret")
        (folder / "escape.md").symlink_to(secret)
        summary = json.loads((folder / "run.json").read_text())
        summary["outputs"] = {"report": str(secret), "relative": "../../secret.md", "link": str(folder / "escape.md")}
        (folder / "run.json").write_text(json.dumps(summary))
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            for name in ("report", "relative", "link"):
                assert client.get(f"/api/runs/{folder.name}/outputs/{name}").status_code == 404

    def test_a_hostile_report_is_served_as_a_tree(self, gallery: Gallery, tmp_path: Path) -> None:
        """A report holding HTML and links comes back as text nodes; only the https link has an href. (The run
        was copied to another home: its file is found in the copy, though run.json names the original's path.)"""
        folder = tmp_path / "runs" / gallery.demo.run_id
        shutil.copytree(gallery.demo.run_dir, folder)
        (folder / "report.md").write_text(HOSTILE)
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            report = get(client, f"/api/runs/{folder.name}/outputs/report")
        assert "<script>window.__xss=1</script>" in texts(report["tree"])
        hrefs = [v for line in json.dumps(report).split(", ") if (v := line.partition('"href": ')[2])]
        assert hrefs == ['"https://example.org/p?a=1"']


class TestSourceApi:
    def test_source_with_evidence_in_context(self, client: TestClient, gallery: Gallery) -> None:
        """A cited source comes with the claim quoting it, the quote located in its text, and the call that found it."""
        detail = get(client, f"/api/runs/{gallery.demo.run_id}/sources/hu2021lora")
        assert (detail["title"], detail["year"], detail["tool"], detail["has_text"]) == (
            "Paper hu2021lora",
            2020,
            "library_search",
            True,
        )
        quoted, cited = detail["evidence"]
        assert quoted == {
            "step": "research_a",
            "claim": "LoRA trains 10,000x fewer parameters.",
            "quote": "It cuts the number of trainable parameters by ten thousand times.",
            "found": True,
            "before": "LoRA freezes the pretrained weights and injects trainable low-rank matrices into each layer. ",
            "after": " The update merges after training.",
        }
        assert cited == {"step": "write", "claim": "LoRA trains few parameters."}
        [call] = [c for c in detail["returned_by"] if c["step"] == "research_a"]
        assert (call["name"], call["hint"]) == (
            "execute_tool library_search",
            '{"query": "low-rank trainable parameters"}',
        )

    def test_a_quote_not_in_the_source_is_flagged(self, gallery: Gallery, tmp_path: Path) -> None:
        """Evidence the source's text does not hold is reported as not found."""
        folder = tmp_path / "runs" / gallery.demo.run_id
        shutil.copytree(gallery.demo.run_dir, folder)
        step = RunFolder(folder).step_states()["research_a"]
        step["output"]["claims"][0]["evidence"] = "LoRA was invented in 1850."
        with RunFolder(folder).step_log.open("a") as log:  # the step's last line is its state
            log.write(json.dumps(step) + "\n")
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            detail = get(client, f"/api/runs/{folder.name}/sources/hu2021lora")
        assert detail["evidence"][0] == {
            "step": "research_a",
            "claim": "LoRA trains 10,000x fewer parameters.",
            "quote": "LoRA was invented in 1850.",
            "found": False,
        }

    def test_the_stamp_changes_with_the_step_log(self, gallery: Gallery, tmp_path: Path) -> None:
        """A line added to ``steps.jsonl`` (a step's new state, which evidence is read from) changes the run's stamp."""
        folder = tmp_path / "runs" / gallery.demo.run_id
        shutil.copytree(gallery.demo.run_dir, folder)
        with TestClient(create_app(tmp_path), base_url="http://127.0.0.1") as client:
            before = get(client, f"/api/runs/{folder.name}/stamp")["stamp"]
            with RunFolder(folder).step_log.open("a") as log:
                log.write(json.dumps({"step_id": "research_a", "output": None}) + "\n")
            assert get(client, f"/api/runs/{folder.name}/stamp")["stamp"] != before

    def test_unknown_source_is_404(self, client: TestClient, gallery: Gallery) -> None:
        """A source id the run never retrieved (an unresolved citation) is a 404."""
        assert client.get(f"/api/runs/{gallery.demo.run_id}/sources/nowhere2020").status_code == 404
