"""The encoder runtime setting: which session runs, the int8 model's identity, bad values, and
the quality gate (``clipsearch evaluate`` R@K within 0.01 of fp32 on the shapes model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from clipsearch.cli import main
from clipsearch.core.config import Settings, get_settings
from clipsearch.demo import shapes
from clipsearch.encoder import session as session_mod
from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.ort_session import OrtSession
from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.quantize import int8_folder, read_metadata
from tests.encoder.runtime_helpers import AVAILABLE_RUNTIMES, shapes_with_int8

needs_openvino = pytest.mark.skipif(
    "openvino" not in AVAILABLE_RUNTIMES, reason="openvino not installed (clipsearch[openvino])"
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes_with_int8(tmp_path_factory.mktemp("runtimes"))


def _settings(model: Path, runtime: str, tmp: Path) -> Settings:
    return Settings(model_path=model, encoder_runtime=runtime, data_dir=tmp, _env_file=None)


def test_default_runtime_is_fp32_on_onnx_runtime(model: Path, tmp_path: Path) -> None:
    enc = LocalEncoder.from_settings(Settings(model_path=model, data_dir=tmp_path, _env_file=None))
    assert enc.runtime == "fp32"
    assert enc.files.folder == model
    assert isinstance(enc.load().visual.session, OrtSession)
    assert enc.precision == "fp32"


def test_int8_runtime_loads_the_int8_sibling_with_its_own_fingerprint(
    model: Path, tmp_path: Path
) -> None:
    fp32 = LocalEncoder.from_settings(_settings(model, "fp32", tmp_path))
    int8 = LocalEncoder.from_settings(_settings(model, "int8", tmp_path))
    meta = read_metadata(int8_folder(model))
    assert int8.files.folder == int8_folder(model)
    assert meta["quantization"] == "int8-static"
    assert "per channel" in meta["quantization_detail"]["visual"]
    assert int8.fingerprint == meta["fingerprint"]
    assert int8.fingerprint != fp32.fingerprint
    assert meta["source_fingerprint"] == fp32.fingerprint
    assert int8.model_name == f"{fp32.model_name}-int8"
    assert int8.precision == "int8"
    # Pointing CLIPSEARCH_MODEL_PATH at the int8 folder itself gives the same model.
    direct = LocalEncoder.from_settings(_settings(int8_folder(model), "int8", tmp_path))
    assert direct.fingerprint == int8.fingerprint


def test_int8_runtime_without_a_copy_names_the_command(model: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("textual.onnx", "visual.onnx", "clipsearch.json"):
        (bare / name).write_bytes((model / name).read_bytes())
    with pytest.raises(EncoderError, match=r"clipsearch quantize --model-path .*bare"):
        LocalEncoder.from_settings(_settings(bare, "int8", tmp_path))


@needs_openvino
def test_openvino_runtime_runs_openvino_on_the_same_model(model: Path, tmp_path: Path) -> None:
    from clipsearch.encoder.openvino_session import OpenVinoSession

    fp32 = LocalEncoder.from_settings(_settings(model, "fp32", tmp_path))
    enc = LocalEncoder.from_settings(_settings(model, "openvino", tmp_path))
    assert isinstance(enc.load().visual.session, OpenVinoSession)
    assert isinstance(enc.load().textual.session, OpenVinoSession)
    assert enc.precision in ("bf16", "f32")
    # Same weights, other arithmetic: the same model (and collections) as fp32.
    assert enc.fingerprint == fp32.fingerprint


@pytest.mark.parametrize("value", ["fp16", "INT4", "onnx", ""])
def test_bad_runtime_values_are_refused_at_start_up(value: str) -> None:
    with pytest.raises(ValidationError, match="encoder_runtime"):
        Settings(encoder_runtime=value, _env_file=None)


def test_bad_runtime_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPSEARCH_ENCODER_RUNTIME", "tensorrt")
    with pytest.raises(
        ValidationError, match=r"encoder_runtime[\s\S]*'fp32', 'int8' or 'openvino'"
    ):
        Settings(_env_file=None)


def test_openvino_missing_is_one_line_naming_the_extra(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipsearch.encoder import openvino_session

    monkeypatch.setattr(openvino_session, "openvino_available", lambda: False)
    with pytest.raises(EncoderError) as info:
        LocalEncoder.from_settings(_settings(model, "openvino", tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert "pip install 'clipsearch[openvino]'" in message
    assert session_mod.OPENVINO_EXTRA in message


# --- the quality gate --------------------------------------------------------------------
# One flipped rank moves R@K by 1/1000: the 0.01 gate allows ten. 1,000 candidates also make
# the task harder (fp32 R@1 0.42) than the 60 of test_shapes_model, so ranks are close.
HELD_OUT = 1000


@pytest.fixture(scope="module")
def held_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("heldout")
    shapes.generate(folder, HELD_OUT, shapes.HELDOUT_SEED)
    return folder / "captions.csv"


def _evaluate(
    runtime: str, model: Path, captions: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> dict[str, Any]:
    monkeypatch.setenv("CLIPSEARCH_ENCODER_RUNTIME", runtime)
    get_settings.cache_clear()
    try:
        assert main(["evaluate", "--captions", str(captions), "--model-path", str(model)]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])["evaluate"]
    return result


@pytest.mark.parametrize("runtime", [r for r in AVAILABLE_RUNTIMES if r != "fp32"])
def test_recall_at_k_within_001_of_fp32(
    runtime: str,
    model: Path,
    held_out: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fp32 = _evaluate("fp32", model, held_out, monkeypatch, capsys)
    other = _evaluate(runtime, model, held_out, monkeypatch, capsys)
    assert other["runtime"] == runtime
    assert fp32["runtime"] == "fp32"
    assert fp32["n_images"] == other["n_images"] == HELD_OUT
    assert fp32["text_to_image"]["R@1"] >= 0.3  # the gate compares a model that works
    for direction in ("text_to_image", "image_to_text"):
        for k, value in fp32[direction].items():
            assert abs(other[direction][k] - value) <= 0.01 + 1e-9, (runtime, direction, k)
