"""Smoke test of ``clipsearch bench pixels``: one gateway process per budget, a few
concurrent image searches, a report of the documented shape (never a figure asserted)."""

from __future__ import annotations

import json

import pytest

from clipsearch.cli import main
from clipsearch.usecases.pixel_budget import return_freed_pixels
from tests.helpers import SHAPES_MODEL

pytestmark = pytest.mark.usefixtures("clean_settings")


def test_bench_pixels_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "pixels", "--budgets", "1000,1", "--clients", "2", "--rounds", "1"]
    assert main([*argv, "--side", "600", "--model-path", str(SHAPES_MODEL)]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out.strip().splitlines()[-1])
    assert [r["budget_mpx"] for r in rows] == [1000.0, 1.0]
    for r in rows:
        assert r["errors"] == []
        assert r["searches"] == 2
        assert 0 < r["rss_before_mb"] <= r["rss_peak_mb"]
    assert "| budget (Mpx) | RSS before (MB) |" in out


def test_freed_pixels_are_returned_on_glibc() -> None:
    assert return_freed_pixels() is True  # this suite runs on Linux with glibc
