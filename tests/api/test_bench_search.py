"""Smoke test of ``clipsearch bench search`` with a tiny corpus: every figure is measured
through a real gateway (uvicorn on loopback, the client) and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipsearch.cli import main
from tests.helpers import SHAPES_MODEL

pytestmark = pytest.mark.usefixtures("clean_settings")


def test_bench_search_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "BENCH.md"
    argv = ["bench", "search", "--sizes", "200", "--queries", "5", "--batch", "4"]
    assert main([*argv, "--model-path", str(SHAPES_MODEL), "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    (row,) = json.loads(out.strip().splitlines()[-1])
    assert row["stored"] == 200
    for part in ("e2e", "encode", "store_search"):
        assert 0 < row[part]["p50_ms"] <= row[part]["p95_ms"], part
    assert row["batch_4_ms"] > 0
    assert row["singles_4_ms"] > 0
    assert "| batch of 4 | 4 single requests |" in out
    assert "## Search (clipsearch bench search)" in out_file.read_text()
