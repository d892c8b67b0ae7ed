"""The step graph of a recorded run: layers from the workflow file, route edges, and the fallbacks."""

from __future__ import annotations

from pathlib import Path

from rolegraph.viewer.layout import layout_graph

LOOP = """\
rolegraph: 1
name: loop
steps:
  plan: {role: planner, task: "Plan."}
  research: {role: researcher, depends_on: [plan], task: "Research."}
  critique:
    role: critic
    depends_on: [research]
    task: "Critique."
    routes: [{when: "output.verdict == 'revise'", goto: research, max_times: 1}]
"""
SEEN = {"plan": {"status": "completed", "role": "planner"}, "research": {"status": "running", "role": "researcher"}}


class TestLayout:
    def test_layers_routes_and_pending_steps(self, tmp_path: Path) -> None:
        """Steps are layered by dependency; a route is an edge of its own kind; unreached steps are pending."""
        (tmp_path / "loop.yaml").write_text(LOOP)
        layout = layout_graph(str(tmp_path / "loop.yaml"), SEEN).as_dict()
        assert (layout["source"], layout["note"]) == ("workflow", None)
        assert [(n["id"], n["layer"], n["status"], n["role"]) for n in layout["nodes"]] == [
            ("plan", 0, "completed", "planner"),
            ("research", 1, "running", "researcher"),
            ("critique", 2, "pending", "critic"),
        ]
        assert sorted((e["source"], e["target"], e["kind"]) for e in layout["edges"]) == [
            ("critique", "research", "route"),
            ("plan", "research", "data"),
            ("research", "critique", "data"),
        ]

    def test_a_workflow_that_no_longer_loads(self, tmp_path: Path) -> None:
        """A workflow file that became invalid falls back to the trace's steps and says why."""
        (tmp_path / "loop.yaml").write_text(LOOP.replace("role: critic", "role: critc"))
        layout = layout_graph(str(tmp_path / "loop.yaml"), SEEN)
        assert layout.source == "trace"
        assert layout.note is not None and "no longer loads" in layout.note and "critc" in layout.note
        assert [(n["id"], n["layer"]) for n in layout.nodes] == [("plan", 0), ("research", 1)]

    def test_no_workflow_file(self) -> None:
        """A run that names no workflow file gets the trace's steps."""
        layout = layout_graph(None, SEEN)
        assert layout.source == "trace" and layout.note is not None
        assert layout.note.startswith("the run does not name its workflow file")
