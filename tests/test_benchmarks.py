"""The benchmarks run and produce their figures (their numbers are not checked: no test asserts a time)."""

from __future__ import annotations

import asyncio
import gc
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from benchmarks import SCENARIOS, overhead, report, report_ray
from benchmarks.__main__ import main
from benchmarks._common import loglog_slope, ratio

ROOT = Path(__file__).resolve().parent.parent


def numbers(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a figures structure, with the path of keys it is under (None marks a figure not available)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, float(value)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from numbers(item, f"{path}.{name}")
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item, path)


SIGNED = ("exponent", "growth")
"""Figures that may be zero or negative on a loaded machine at smoke size: fitted growth exponents and
memory growth. Every other figure is a duration, a count, a size or a ratio of them."""


NEEDS_LOCAL_MODEL = {"local_model", "batched_decoding"}
"""Scenarios that run the embedded model: tested on their own, marked local_model."""


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    """Every scenario but those needing the embedded model, at the smoke level, run once for the module."""
    return {name: scenario("smoke") for name, scenario in SCENARIOS.items() if name not in NEEDS_LOCAL_MODEL}


class TestScenarios:
    def test_every_figure_is_well_formed(self, figures: dict[str, Any]) -> None:
        """Each scenario yields numbers, all finite; none negative but fitted exponents and memory growth
        (a time can measure 0 at the timer's resolution on a loaded machine: no timing relation is asserted)."""
        for name, figs in figures.items():
            values = list(numbers(figs))
            assert values, name
            assert all(math.isfinite(v) for _, v in values), (name, values)
            wrong = [(k, v) for k, v in values if v < 0 and not any(part in k for part in SIGNED)]
            assert wrong == [], (name, wrong)

    def test_overhead_rows(self, figures: dict[str, Any]) -> None:
        """Per-step overhead has one row per chain length, with the scheduler and the traced engines."""
        fig = figures["overhead"]
        assert fig["asyncio_task_us"] >= 0
        assert [r["n"] for r in fig["rows"]] == [5, 20]
        for row in fig["rows"]:
            assert set(row) >= {"n", "scheduler_us", "engine_untraced_us", "engine_jsonl_us", "engine_sqlite_us"}
            assert row["engine_untraced_cpu_us"] > 0 and row["engine_jsonl_cpu_us"] > 0
            assert row["scheduler_us"] and row["engine_untraced_us"] and row["engine_jsonl_us"]
            assert row["engine_sqlite_us"] and row["engine_sqlite_cpu_us"] > 0
            assert all(isinstance(row[f"engine_{kind}_full_gcs"], int) for kind in ("untraced", "jsonl", "sqlite"))

    def test_overhead_counts_the_full_collections_of_its_counted_runs(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Each engine figure comes with the number of full garbage collections during its counted runs (the
        warm-up run's not counted)."""
        real = overhead.schedule

        async def collecting(*args: Any, **kwargs: Any) -> Any:
            gc.collect()
            return await real(*args, **kwargs)

        monkeypatch.setattr(overhead, "schedule", collecting)
        measured = asyncio.run(overhead.engine_ns_per_step(3, 2, "untraced", tmp_path))
        assert measured is not None
        assert measured[2] >= 2  # one per counted run (a full collection of its own may fall in one too)

    def test_parallelism_shapes(self, figures: dict[str, Any]) -> None:
        """Makespan over critical path is given for every fan-out width and DAG shape."""
        fig = figures["parallelism"]
        assert [r["width"] for r in fig["fan_out"]] == [1, 10]
        assert [r["shape"] for r in fig["dags"]] == ["layered", "wide", "deep", "diamond"]
        for row in [*fig["fan_out"], *fig["dags"]]:
            assert {"critical_path_ms", "makespan_ms", "ratio", "asyncio_ratio"} <= set(row)

    def test_graph_scale_exponents(self, figures: dict[str, Any]) -> None:
        """Graph scale fits a growth exponent for each phase of each shape."""
        for shape in ("chain", "layered"):
            assert set(figures["graph_scale"][shape]["time_exponent"]) == {"parse", "compile", "schedule"}
            assert len(figures["graph_scale"][shape]["rows"]) == 2

    def test_concurrent_runs(self, figures: dict[str, Any]) -> None:
        """Concurrent runs give time and memory per run for rolegraph and LangGraph at each count, with ratios."""
        fig = figures["concurrent_runs"]
        assert set(fig["variants"]) == {"rolegraph", "rolegraph_engine", "langgraph", "langgraph_checkpointed"}
        for rows in fig["variants"].values():
            assert [r["runs"] for r in rows] == [5, 20]
            assert all(
                {"total_s", "ms_per_run", "tracemalloc_kib_per_run", "rss_growth_kib_per_run"} <= set(r) for r in rows
            )
        assert [r["runs"] for r in fig["ratios"]] == [5, 20]
        assert all(r[k] is None or r[k] >= 0 for r in fig["ratios"] for k in ("time_ratio", "memory_ratio"))

    def test_concurrent_runs_breakdown(self, figures: dict[str, Any]) -> None:
        """The breakdown of a whole run times each of its parts, the SQLite index thread included."""
        parts = figures["concurrent_runs"]["breakdown"]["parts_ms_per_run"]
        assert len(parts) == 10
        assert all(ms >= 0 for ms in parts.values()), parts

    def test_trace_sinks(self, figures: dict[str, Any]) -> None:
        """Trace throughput covers no sink, memory, JSONL, the live SQLite index, and the two together (a run's)."""
        sinks = figures["trace_throughput"]["sinks"]
        assert set(sinks) == {"none", "memory", "jsonl", "sqlite", "jsonl+sqlite"}
        for kind in ("none", "memory", "jsonl", "sqlite", "jsonl+sqlite"):
            assert sinks[kind]["spans_per_s"] is None or sinks[kind]["spans_per_s"] > 0
        assert sinks["jsonl"]["bytes_per_span"] > 0 and sinks["sqlite"]["bytes_per_span"] > 0
        assert sinks["jsonl+sqlite"]["bytes_per_span"] > sinks["jsonl"]["bytes_per_span"]

    def test_langgraph_ratios(self, figures: dict[str, Any]) -> None:
        """The LangGraph comparison gives a ratio per chain length and per graph."""
        fig = figures["langgraph_compare"]
        assert [r["n"] for r in fig["chain"]] == [5, 20]
        assert all({"scheduler_ratio", "engine_ratio"} <= set(r) for r in fig["chain"])
        assert [r["graph"] for r in fig["makespan"]][:2] == ["fan-out 1", "fan-out 10"]

    def test_model_cache_figures(self, figures: dict[str, Any]) -> None:
        """The cache scenario answers its turns from the cache, times a hit beside a scripted call and the
        cache's own operations, and leaves the embedded model out at smoke size."""
        fig = figures["model_cache"]
        assert fig["hits"] >= fig["repeats"] > 0
        assert all(fig[k] > 0 for k in ("scripted_us_per_turn", "cached_us_per_turn", "lookup_us", "keep_us"))
        assert fig["embedded"] is None and "embedded_over_cached" not in fig
        results = report.merge(None, {"model_cache": {"level": "smoke", "seconds": 1.0, "figures": fig}})
        assert "## 8. Model-call cache" in report.markdown(results)

    def test_whole_runs_against_langgraph(self, figures: dict[str, Any]) -> None:
        """Whole runs give, per chain length and step kind, rolegraph's and LangGraph's per-step times and ratios,
        and the per-step time of the same disk work done with bare calls."""
        fig = figures["whole_runs"]
        for kind in ("agent", "function"):
            assert [r["n"] for r in fig[kind]] == [5, 20]
            for row in fig[kind]:
                assert row["rolegraph_us"] > 0 and row["langgraph_us"] > 0 and row["langgraph_memory_us"] > 0
                assert row["io_floor_us"] > 0
                assert row["ratio_bare"] == pytest.approx(row["rolegraph_us"] / row["langgraph_us"])
                assert (row["langgraph_sqlite_us"] is None) is (not fig["sqlite_saver"])

    def test_many_runs_against_langgraph(self, figures: dict[str, Any]) -> None:
        """Many concurrent runs give each side's time, throughput and peak memory, the ratios to LangGraph, the
        disk work alone (bare calls) with its ratio apart from them, and a target row."""
        fig = figures["many_runs"]
        assert fig["runs"] == 20 and "rolegraph" in fig["variants"] and "langgraph" in fig["variants"]
        for side in fig["variants"].values():
            assert side["runs"] == 20 and side["runs_per_s"] > 0 and side["peak_rss_mib"] >= side["rss_before_mib"]
        assert set(fig["ratios"]) == set(fig["variants"]) - {"rolegraph", "io_floor", "rolegraph_engine"}
        assert fig["variants"]["rolegraph_engine"]["runs"] == 20
        assert fig["floor_time_ratio"] == pytest.approx(
            fig["variants"]["rolegraph"]["total_s"] / fig["variants"]["io_floor"]["total_s"]
        )
        results = report.merge(None, {"many_runs": {"level": "smoke", "seconds": 1.0, "figures": fig}})
        row = next(t for t in report.targets(results) if t["target"].startswith("10,000 concurrent whole runs"))
        assert row["measured"] == fig["variants"]["rolegraph"]["peak_rss_mib"]
        assert row["met"] is False  # 20 runs are not 10,000: the target cannot be met at the smoke size
        text = report.markdown(results)
        assert "concurrent whole runs, each side in a fresh process" in text
        assert "Disk work alone (`io_floor`" in text and "The engine alone (`rolegraph_engine`" in text


@pytest.mark.local_model
class TestLocalModel:
    def test_provider_and_raw_tokens_per_second(self) -> None:
        """Scenario 6 gives tokens/s of the provider and of raw llama-cpp-python, unconstrained and constrained."""
        fig = SCENARIOS["local_model"]("smoke")
        assert set(fig["cases"]) == {"unconstrained", "constrained"}
        for case in fig["cases"].values():
            for side in ("provider", "raw"):
                assert case[side]["tokens"] > 0 and case[side]["tokens_per_s"] > 0
                assert math.isfinite(case[side]["seconds_per_call"])
            assert case["ratio"] > 0
            assert math.isfinite(case["framework_share_pct"])  # signed: noise can make the provider faster
        results = report.merge(None, {"local_model": {"level": "smoke", "seconds": 1.0, "figures": fig}})
        (target,) = [t for t in report.targets(results) if t["target"].startswith("local provider")]
        assert target["met"] is not None
        assert "## 6. Embedded model" in report.markdown(results)

    def test_batched_decoding_against_the_engine(self) -> None:
        """Scenario 9 times the provider's concurrent and serial calls, the previous path, raw serial and raw
        batched decoding (on llama.cpp's default KV cache and on the provider's) per number of concurrent calls,
        checks each batched sequence and each concurrent call against itself alone, and reports the issue's
        target from them."""
        fig = SCENARIOS["batched_decoding"]("smoke")
        assert [r["calls"] for r in fig["rows"]] == [1, 2]
        for row in fig["rows"]:
            assert row["tokens"] > 0 and row["decode_tokens_per_s"] > 0
            sides = ("engine_s", "engine_serial_s", "previous_s", "raw_serial_s", "raw_batched_s")
            sides += ("raw_batched_kv_s",)
            shares = ("engine_share_of_batched", "engine_share_of_batched_kv", "engine_over_previous")
            assert all(row[k] > 0 for k in (*sides, *shares))
            assert row["identical_to_alone"] is True and row["engine_identical_to_alone"] is True
        assert fig["rows"][0]["decode_speedup"] == 1.0
        results = report.merge(None, {"batched_decoding": {"level": "smoke", "seconds": 1.0, "figures": fig}})
        (target,) = [t for t in report.targets(results) if t["target"].startswith("embedded model, 4 concurrent")]
        assert target["measured"] > 0 and target["met"] is not None and "at 2 calls" in target["note"]
        assert "bfloat16 KV cache" in target["note"]
        assert "## 9. Parallel branches on the embedded model" in report.markdown(results)


class TestFiguresUnderLoad:
    def test_a_time_below_the_timer_resolution_is_not_a_figure(self) -> None:
        """A time measured as 0 gives no exponent or ratio (None), never a math error; a slope may be negative."""
        assert loglog_slope([10, 40], [5.0, 0.0]) is None
        assert ratio(3.0, 0.0) is None and ratio(None, 2.0) is None and ratio(3.0, 2.0) == 1.5
        assert loglog_slope([10, 40], [8.0, 4.0]) == pytest.approx(-0.5)  # the small graph took longest

    def test_the_report_reads_a_missing_exponent_as_not_measured(self, figures: dict[str, Any]) -> None:
        """A graph-scale exponent that could not be fitted makes its target "not measured", not a crash."""
        scale = json.loads(json.dumps(figures["graph_scale"]))
        scale["chain"]["time_exponent"]["compile"] = None
        results = report.merge(None, {"graph_scale": {"level": "smoke", "seconds": 1.0, "figures": scale}})
        (target,) = [t for t in report.targets(results) if t["target"].startswith("compile + validate growth")]
        assert (target["measured"], target["met"]) == (None, None)
        assert "exponent, all sizes" in report.markdown(results)


class TestReport:
    def test_report_files(self, figures: dict[str, Any], tmp_path: Path) -> None:
        """The report writes results.json, the markdown with every target, and four plots."""
        results = report.merge(None, {k: {"level": "smoke", "seconds": 1.0, "figures": v} for k, v in figures.items()})
        written = report.write(results, tmp_path, tmp_path / "RESULTS.md")
        assert sorted(p.name for p in written) == sorted(
            ["results.json", "RESULTS.md", "overhead.png", "makespan.png", "graph_scale.png", "concurrent_runs.png"]
        )
        text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
        assert all(t["target"] in text for t in report.targets(results))
        assert results["machine"]["cpu_count"]

    def test_the_readme_table_is_the_generators(self) -> None:
        """The README's headline table is exactly what the generator writes from the tracked results.json."""
        results = report.load(ROOT / "benchmarks" / "results")
        assert results is not None
        assert report.readme_block(results) in (ROOT / "README.md").read_text(encoding="utf-8")

    def test_the_readme_cluster_figures_are_the_generators(self, tmp_path: Path) -> None:
        """The README's figures for a cluster are what `report_ray` writes from the tracked results.json, and
        regenerating them replaces only what lies between their markers."""
        results = report.load(ROOT / "benchmarks" / "results")
        assert results is not None
        block = report_ray.readme_block(results["scenarios"]["ray"]["figures"])
        assert block in (ROOT / "README.md").read_text(encoding="utf-8")
        readme = tmp_path / "README.md"
        readme.write_text(f"before\n{report_ray.README_START}\nstale\n{report_ray.README_END}\nafter\n")
        assert report_ray.update_readme(results, readme)
        assert readme.read_text(encoding="utf-8") == f"before\n{block}\nafter\n"

    def test_the_readme_table_is_replaced_between_its_markers(self, tmp_path: Path) -> None:
        """Regenerating replaces only what lies between the markers."""
        results = report.load(ROOT / "benchmarks" / "results")
        assert results is not None
        readme = tmp_path / "README.md"
        readme.write_text(f"before\n{report.README_START}\nstale\n{report.README_END}\nafter\n", encoding="utf-8")
        assert report.update_readme(results, readme)
        assert readme.read_text(encoding="utf-8") == f"before\n{report.readme_block(results)}\nafter\n"

    def test_render_rewrites_the_report_from_results_without_running(self, tmp_path: Path) -> None:
        """`--render` measures nothing: RESULTS.md is rewritten from the folder's results.json (exit 2 without one)."""
        assert main(["--render", "--out", str(tmp_path)]) == 2
        assert main(["--smoke", "--only", "trace_throughput", "--out", str(tmp_path)]) == 0
        before = report.load(tmp_path)
        (tmp_path / "RESULTS.md").write_text("stale", encoding="utf-8")
        assert main(["--render", "--out", str(tmp_path)]) == 0
        assert report.load(tmp_path) == before
        assert (tmp_path / "RESULTS.md").read_text(encoding="utf-8") == report.markdown(before)

    def test_command_merges_with_previous_results(self, tmp_path: Path) -> None:
        """`--only` adds its scenario to the results already in the folder."""
        assert main(["--smoke", "--only", "trace_throughput", "--out", str(tmp_path)]) == 0
        assert main(["--smoke", "--only", "graph_scale", "--out", str(tmp_path)]) == 0
        loaded = report.load(tmp_path)
        assert loaded is not None
        assert set(loaded["scenarios"]) == {"trace_throughput", "graph_scale"}
