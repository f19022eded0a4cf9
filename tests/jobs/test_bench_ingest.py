"""Smoke test of ``clipsearch bench ingest`` with a tiny N: it runs all three paths for real
(encoder, a uvicorn gateway and its job, the naive loop) and reports every figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipsearch.cli import main

KEYS = {
    "bench", "n", "naive_n", "nproc", "model", "image_size", "batch_size",
    "ceiling_images_per_s", "pipeline_images_per_s", "naive_images_per_s",
    "pipeline_vs_ceiling", "pipeline_vs_naive", "pipeline",
}  # fmt: skip


# Settings as a fresh shell would read them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_settings")


def test_bench_ingest_smoke(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "BENCH.md"
    argv = ["bench", "ingest", "--n", "12", "--naive-n", "5", "--batch-size", "4"]
    assert main([*argv, "--model-path", str(model_dir), "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "| pipeline: POST /v1/ingest -> job done |" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result) >= KEYS, KEYS - set(result)
    assert result["bench"] == "ingest"
    assert (result["n"], result["naive_n"], result["batch_size"]) == (12, 5, 4)
    for key in ("ceiling_images_per_s", "pipeline_images_per_s", "naive_images_per_s"):
        assert result[key] > 0, key
    ratio = result["pipeline_images_per_s"] / result["ceiling_images_per_s"]
    assert result["pipeline_vs_ceiling"] == pytest.approx(ratio, rel=0.01, abs=0.001)
    job = result["pipeline"]
    # The timed job really ingested everything, and the result is searchable.
    assert job["status"] == "done"
    assert job["counts"]["stored"] == 12
    assert job["searchable"] is True
    assert job["encode_s"] > 0  # the job's encodes went through the measured encoder
    assert "## Ingest (clipsearch bench ingest --n 12)" in out_file.read_text()


def test_bench_ingest_runtimes_and_large_photos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.encoder.runtime_helpers import shapes_with_int8

    model = shapes_with_int8(tmp_path)
    argv = ["bench", "ingest", "--n", "8", "--batch-size", "4", "--no-naive"]
    argv += ["--runtimes", "fp32,int8", "--large", "2", "--large-repeats", "1"]
    assert main([*argv, "--model-path", str(model)]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    runs = {r["runtime"]: r for r in result["runtimes"]}
    assert set(runs) == {"fp32", "int8"}
    assert runs["int8"]["fingerprint"] != runs["fp32"]["fingerprint"]
    for run in runs.values():
        assert run["pipeline"]["status"] == "done"
        assert run["pipeline"]["searchable"] is True
        assert run["naive_images_per_s"] is None
    assert "| int8 | " in out
    assert "pipeline x fp32" in out
    large = runs["fp32"]["pipeline"]["large"]
    assert large["n"] == 2
    assert large["size"] == "4000x3000"
    for key in ("draft_ms", "no_draft_ms", "post_ms", "encode_one_ms"):
        assert large[key] > 0, key
    # Draft mode decodes a 4000x3000 JPEG at reduced scale: it must be faster.
    assert large["draft_speedup"] > 1.5
    assert "decode + preprocess, draft mode" in out
    assert runs["int8"]["pipeline"]["large"] is None  # measured once, on the first runtime
