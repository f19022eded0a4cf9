"""The committed tiny ``shapes`` model folder: layout, ONNX contract, retrieval, int8 copy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from tests.helpers import SHAPES_MODEL

from clipsearch.demo import shapes
from clipsearch.encoder.quantize import fingerprint, quantize_model_dir
from clipsearch.encoder.tokenizer import get_tokenizer


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _pixels(images: list[np.ndarray], meta: dict[str, object]) -> np.ndarray:
    mean = np.asarray(meta["mean"], dtype=np.float32)
    std = np.asarray(meta["std"], dtype=np.float32)
    batch = np.stack(images).astype(np.float32) / 255.0
    return ((batch - mean) / std).transpose(0, 3, 1, 2).copy()


def _unit(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


@pytest.fixture(scope="module")
def meta() -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SHAPES_MODEL / "clipsearch.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def held_out() -> tuple[list[np.ndarray], list[str]]:
    pairs = list(shapes.iter_samples(60, seed=shapes.HELDOUT_SEED))
    return [np.asarray(image) for image, _ in pairs], [caption for _, caption in pairs]


def test_metadata_describes_the_files(meta: dict[str, object]) -> None:
    assert meta["name"] == "shapes-tiny"
    assert meta["image_size"] == 224
    assert meta["context_length"] == 77
    assert meta["dynamic_text_length"] is True
    assert meta["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert meta["std"] == pytest.approx([0.26862954, 0.26130258, 0.27577711])
    assert meta["fingerprint"] == fingerprint(SHAPES_MODEL)
    files = meta["files"]
    assert isinstance(files, dict)
    assert set(files) == {"textual.onnx", "visual.onnx"}
    total = sum((SHAPES_MODEL / name).stat().st_size for name in files)
    assert total == sum(entry["bytes"] for entry in files.values())
    assert total < 25 * 1024 * 1024


def test_onnx_inputs_follow_clip_servers_contract() -> None:
    text = _session(SHAPES_MODEL / "textual.onnx")
    visual = _session(SHAPES_MODEL / "visual.onnx")
    assert [(i.name, i.type) for i in text.get_inputs()] == [
        ("input_ids", "tensor(int32)"),
        ("attention_mask", "tensor(int32)"),
    ]
    assert [(i.name, i.type) for i in visual.get_inputs()] == [("pixel_values", "tensor(float)")]
    assert visual.get_inputs()[0].shape[1:] == [3, 224, 224]


def test_batch_and_text_length_are_dynamic(meta: dict[str, object]) -> None:
    text = _session(SHAPES_MODEL / "textual.onnx")
    captions = ["a small red circle on the left", "a blue square above a yellow star", ""]
    ids, mask = get_tokenizer().tokenize(captions)
    full = text.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    length = int(mask.sum(axis=1).max())
    trimmed = text.run(None, {"input_ids": ids[:, :length], "attention_mask": mask[:, :length]})[0]
    single = text.run(None, {"input_ids": ids[:1, :9], "attention_mask": mask[:1, :9]})[0]
    assert full.shape == (3, meta["dim"])
    assert full.dtype == np.float32
    np.testing.assert_allclose(trimmed, full, atol=1e-5)
    np.testing.assert_allclose(single[0], full[0], atol=1e-5)
    # Distinct captions must not collapse to one vector.
    assert np.abs(full[0] - full[1]).max() > 1e-2


def test_held_out_captions_find_their_pictures(
    meta: dict[str, object], held_out: tuple[list[np.ndarray], list[str]]
) -> None:
    images, captions = held_out
    ids, mask = get_tokenizer().tokenize(captions)
    text = _unit(
        _session(SHAPES_MODEL / "textual.onnx").run(
            None, {"input_ids": ids, "attention_mask": mask}
        )[0]
    )
    image = _unit(
        _session(SHAPES_MODEL / "visual.onnx").run(None, {"pixel_values": _pixels(images, meta)})[0]
    )
    similarity = text @ image.T
    rank = (similarity > np.diag(similarity)[:, None]).sum(axis=1)
    # Chance would be 1/60 at R@1 and 5/60 at R@5.
    assert (rank < 1).mean() >= 0.7  # measured 0.90
    assert (rank < 5).mean() >= 0.9  # measured 1.00


def test_int8_copy_keeps_the_embeddings(
    tmp_path: Path, meta: dict[str, object], held_out: tuple[list[np.ndarray], list[str]]
) -> None:
    quantized = quantize_model_dir(SHAPES_MODEL, tmp_path)
    assert quantized["quantization"] == "int8-dynamic"
    assert quantized["source_fingerprint"] == meta["fingerprint"]
    assert quantized["fingerprint"] == fingerprint(tmp_path)
    assert quantized["fingerprint"] != meta["fingerprint"]
    assert quantized["dim"] == meta["dim"]
    for name in ("textual.onnx", "visual.onnx"):
        assert (tmp_path / name).stat().st_size < (SHAPES_MODEL / name).stat().st_size
    pixels = _pixels(held_out[0][:8], meta)
    fp32 = _unit(_session(SHAPES_MODEL / "visual.onnx").run(None, {"pixel_values": pixels})[0])
    int8 = _unit(_session(tmp_path / "visual.onnx").run(None, {"pixel_values": pixels})[0])
    assert float((fp32 * int8).sum(axis=1).min()) > 0.95
