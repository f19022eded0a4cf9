"""Smoke test of ``clipsearch bench encoder`` with tiny counts: every runtime in one run, keys
present, numbers positive, ratios printed, cosines close."""

from __future__ import annotations

import json

import pytest

from clipsearch.cli import main
from tests.encoder.runtime_helpers import AVAILABLE_RUNTIMES

# Settings as a fresh shell would read them (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_settings")


FIGURES = (
    "images_per_s_b8",
    "images_per_s_b32",
    "texts_per_s",
    "latency_ms_full",
    "latency_ms_trimmed",
    "size_mb",
)


@pytest.mark.parametrize("model", ["dynamic_model", "fixed_model"])
def test_bench_encoder_smoke(
    model: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = request.getfixturevalue(model)
    argv = ["bench", "encoder", "--model-path", str(folder), "--images", "8", "--texts", "8"]
    assert main([*argv, "--repeats", "2", "--rounds", "2", "--pictures", "8"]) == 0
    out = capsys.readouterr().out
    assert "| runtime | precision | img/s b8 |" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["bench"] == "encoder"
    assert result["nproc"] >= 1
    expected = [
        "fp32",
        "int8",
        "int8-dynamic",
        *(["openvino"] if "openvino" in AVAILABLE_RUNTIMES else []),
    ]
    assert list(result["runtimes"]) == expected
    for name in expected:
        figures = result["runtimes"][name]
        assert isinstance(figures, dict), (name, figures)
        for key in FIGURES:
            assert figures[key] > 0, (name, key)
        assert figures["full_tokens"] == 77
        if model == "dynamic_model":
            assert figures["trimmed_tokens"] < 77
        else:
            assert figures["trimmed_tokens"] == 77
        if name != "fp32":
            # Random weights still quantise closely; every line has its ratio column.
            assert figures["cosine_to_fp32"]["image_mean"] > 0.9, name
            assert figures["cosine_to_fp32"]["text_mean"] > 0.9, name
            assert f"| {name} | " in out
    # A quantised copy is another model; OpenVINO runs the same one.
    runtimes = result["runtimes"]
    assert runtimes["int8"]["fingerprint"] != runtimes["fp32"]["fingerprint"]
    if "openvino" in runtimes:
        assert runtimes["openvino"]["fingerprint"] == runtimes["fp32"]["fingerprint"]
    assert result["dynamic_text"] is (model == "dynamic_model")


def test_bench_encoder_refuses_an_unknown_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "encoder", "--runtimes", "fp32,tensorrt"]) == 2
    assert "unknown runtime(s) tensorrt" in capsys.readouterr().err
