"""Smoke test of ``clipsearch bench encoder`` with tiny counts: keys present, numbers positive."""

from __future__ import annotations

import json

import pytest

from clipsearch.cli import main

# Settings as a fresh shell would read them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_settings")


FIGURES = ("images_per_s", "texts_per_s", "latency_ms_full", "latency_ms_trimmed", "size_mb")


@pytest.mark.parametrize("model", ["dynamic_model", "fixed_model"])
def test_bench_encoder_smoke(
    model: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = request.getfixturevalue(model)
    argv = ["bench", "encoder", "--model-path", str(folder), "--images", "4", "--texts", "8"]
    assert main([*argv, "--repeats", "2", "--rounds", "2", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["bench"] == "encoder"
    assert result["nproc"] >= 1
    for variant in ("fp32", "int8"):
        figures = result[variant]
        assert isinstance(figures, dict), figures
        for key in FIGURES:
            assert figures[key] > 0, (variant, key)
        assert figures["full_tokens"] == 77
        if model == "dynamic_model":
            assert figures["trimmed_tokens"] < 77
        else:
            assert figures["trimmed_tokens"] == 77
    assert result["dynamic_text"] is (model == "dynamic_model")
    # Random weights still quantise closely.
    assert result["int8_vs_fp32_cosine"]["image"] > 0.9
    assert result["int8_vs_fp32_cosine"]["text"] > 0.9
