"""Smoke test of ``clipsearch bench load``: a gateway process on loopback, three phases of a
second each, and a report of the documented shape (never a timing assertion)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipsearch.bench.load import MIX, Sample, summarise
from clipsearch.cli import main
from tests.helpers import SHAPES_MODEL

pytestmark = pytest.mark.usefixtures("clean_settings")


def test_bench_load_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "RELIABILITY.md"
    argv = ["bench", "load", "--seconds", "1", "--concurrency", "2", "--factor", "2"]
    argv += ["--seed", "4", "--model-path", str(SHAPES_MODEL), "--out", str(out_file)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["capped"] is True
    assert [p["phase"] for p in report["phases"]] == ["base", "overload", "back"]
    assert [p["clients"] for p in report["phases"]] == [2, 4, 2]
    for phase in report["phases"]:
        assert phase["requests"] > 0
        assert set(phase["endpoints"]) == {name for name, _ in MIX}
        assert 0 <= phase["refused_share"] <= 1
        assert phase["error_rate"] == 0  # nothing fails on loopback at this load
        assert {"p50_ms", "p95_ms", "p99_ms"} <= set(phase["admitted"])
    assert "## Load (clipsearch bench load)" in out_file.read_text()


def test_summary_counts_refusals_apart_from_admitted_latencies() -> None:
    samples = [Sample("search_text", 10.0, "ok"), Sample("search_text", 20.0, "ok"),
               Sample("search_text", 1.0, "refused"), Sample("ingest", 5.0, "error")]  # fmt: skip
    got = summarise(samples, clients=3, seconds=2.0)
    assert got["requests"] == 4
    assert got["throughput_rps"] == 2.0
    assert got["admitted_rps"] == 1.0
    assert got["refused_share"] == 0.25
    assert got["error_rate"] == 0.25
    text = got["endpoints"]["search_text"]
    assert (text["ok"], text["refused"], text["errors"]) == (2, 1, 0)
    assert text["p50_ms"] == 15.0  # refused requests are not in the admitted latencies
    assert text["refused_p99_ms"] == 1.0
    assert got["endpoints"]["search_image"]["requests"] == 0
