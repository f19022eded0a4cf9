"""LocalEncoder on random ONNX models: shapes, normalisation, trimming, batching, threads."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

from clipsearch.core.config import Settings
from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.encoder.ort_session import OrtSession
from clipsearch.encoder.protocol import Encoder, EncoderError, ImageDecodeError
from tests.encoder.conftest import png_bytes
from tests.encoder.onnx_fixtures import build_model_dir

TEXTS = ["a red circle", "a small blue square above a yellow star on the left", "", "猫 🐱"]


def make(folder: Path, **kw: object) -> LocalEncoder:
    return LocalEncoder(ModelFiles(folder), model_name="test-model", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["dynamic_model", "fixed_model"])
def test_shapes_dtype_and_unit_norm(model: str, request: pytest.FixtureRequest) -> None:
    enc = make(request.getfixturevalue(model))
    assert isinstance(enc, Encoder)
    texts = asyncio.run(enc.encode_texts(TEXTS))
    images = asyncio.run(enc.encode_images([png_bytes(i) for i in range(3)]))
    assert texts.shape == (4, 16)
    assert images.shape == (3, 16)
    assert texts.dtype == images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-6)
    assert enc.dim == 16
    assert enc.image_size == 32
    assert asyncio.run(enc.encode_texts([])).shape == (0, 16)


def test_dynamic_model_trims_and_matches_padded(dynamic_model: Path) -> None:
    enc = make(dynamic_model)
    assert enc.dynamic_text_length
    ids, mask = enc.tokenize(TEXTS)
    assert ids.shape == (4, 77)
    padded = enc.load().textual.session.run({"input_ids": ids, "attention_mask": mask})
    padded /= np.linalg.norm(padded, axis=1, keepdims=True)
    trimmed = enc.encode_texts_sync(TEXTS)
    np.testing.assert_allclose(trimmed, padded, atol=1e-6)
    # The trimmed length really is shorter than 77: the graph accepts it as is.
    longest = int(mask.sum(axis=1).max())
    assert longest < 20
    direct = enc.load().textual.session.run(
        {"input_ids": ids[:, :longest], "attention_mask": mask[:, :longest]}
    )
    assert direct.shape == (4, 16)


def test_fixed_model_is_padded_to_77(fixed_model: Path) -> None:
    enc = make(fixed_model)
    assert not enc.dynamic_text_length
    ids, mask = enc.tokenize(TEXTS)
    n = int(mask.sum(axis=1).max())
    session = enc.load().textual.session
    with pytest.raises(EncoderError):  # the graph itself refuses a trimmed batch ...
        session.run({"input_ids": ids[:, :n], "attention_mask": mask[:, :n]})
    # ... so the encoder pads what it is given back to 77.
    out = enc.encode_token_batch(ids[:, :n], mask[:, :n])
    full = session.run({"input_ids": ids, "attention_mask": mask})
    np.testing.assert_allclose(out, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("model", ["dynamic_model", "fixed_model"])
def test_batch_equals_single_and_chunking(model: str, request: pytest.FixtureRequest) -> None:
    folder = request.getfixturevalue(model)
    enc = make(folder, batch_size=3)
    images = [png_bytes(i) for i in range(7)]
    batch_t = asyncio.run(enc.encode_texts(TEXTS * 2))
    batch_i = asyncio.run(enc.encode_images(images))
    single = make(folder, batch_size=1)
    for i, text in enumerate(TEXTS * 2):
        np.testing.assert_allclose(
            asyncio.run(single.encode_texts([text]))[0], batch_t[i], atol=1e-6
        )
    for i, img in enumerate(images):
        np.testing.assert_allclose(
            asyncio.run(single.encode_images([img]))[0], batch_i[i], atol=1e-6
        )
    # Different inputs give different vectors (the model is not constant).
    assert not np.allclose(batch_i[0], batch_i[1])
    assert not np.allclose(batch_t[0], batch_t[1])


def test_encode_pixels_matches_encode_images(dynamic_model: Path) -> None:
    enc = make(dynamic_model, batch_size=2)
    data = [png_bytes(i) for i in range(5)]
    pixels = np.stack([enc.preprocess_image(d) for d in data])
    assert pixels.shape == (5, 3, 32, 32)
    np.testing.assert_allclose(enc.encode_pixels(pixels), asyncio.run(enc.encode_images(data)))


def test_inference_runs_in_pool_and_loop_stays_free(dynamic_model: Path) -> None:
    """The forward pass blocks until a coroutine on the loop releases it: no deadlock."""
    enc = make(dynamic_model)
    enc.load()
    release = threading.Event()
    seen: list[tuple[str, bool]] = []
    real = enc.encode_token_batch

    def blocking(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        seen.append((threading.current_thread().name, release.wait(timeout=5)))
        return real(ids, mask)

    enc.encode_token_batch = blocking  # type: ignore[method-assign]

    async def main() -> np.ndarray:
        task = asyncio.create_task(enc.encode_texts(["a cat"]))
        await asyncio.sleep(0.05)  # the loop runs while the encode waits in its thread
        release.set()
        return await task

    out = asyncio.run(main())
    assert out.shape == (1, 16)
    assert seen
    assert seen[0][0].startswith("clip-enc")
    assert seen[0][1], "the event loop was blocked by the encoder"


def test_fingerprint_stable_and_content_based(dynamic_model: Path, tmp_path: Path) -> None:
    digest = hashlib.sha256(
        (dynamic_model / "textual.onnx").read_bytes() + (dynamic_model / "visual.onnx").read_bytes()
    ).hexdigest()
    assert make(dynamic_model).fingerprint == digest
    assert make(dynamic_model).fingerprint == digest
    other = build_model_dir(tmp_path / "other", seed=99)
    assert make(other).fingerprint != digest


def test_clipsearch_json_is_used_without_loading(tmp_path: Path) -> None:
    cfg: dict[str, object] = {
        "name": "shapes-test",
        "dim": 8,
        "image_size": 32,
        "fingerprint": "abc123",
        "context_length": 77,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
    }
    folder = build_model_dir(tmp_path / "m", dim=8, config=cfg)
    enc = make(folder)
    assert (enc.model_name, enc.dim, enc.fingerprint) == ("shapes-test", 8, "abc123")
    assert enc._loaded is None  # metadata from the file: no ONNX session yet
    assert enc.config.mean == (0.5, 0.5, 0.5)
    assert asyncio.run(enc.encode_images([png_bytes(1)])).shape == (1, 8)


def test_image_size_from_model_name_when_graph_is_dynamic(tmp_path: Path) -> None:
    folder = build_model_dir(tmp_path / "m", image_size=None)
    assert LocalEncoder(ModelFiles(folder), model_name="ViT-B-32::openai").image_size == 224
    assert LocalEncoder(ModelFiles(folder), model_name="RN50x4::openai").image_size == 288
    with pytest.raises(EncoderError, match="image size"):
        LocalEncoder(ModelFiles(folder), model_name="unknown").load()


def test_bad_image_raises_image_decode_error(dynamic_model: Path) -> None:
    enc = make(dynamic_model)
    with pytest.raises(ImageDecodeError):
        asyncio.run(enc.encode_images([png_bytes(0), b"definitely not an image"]))
    with pytest.raises(ImageDecodeError):
        asyncio.run(enc.encode_images([png_bytes(0)[:60]]))  # truncated PNG


def test_from_settings_health_and_close(dynamic_model: Path, tmp_path: Path) -> None:
    settings = Settings(
        model_path=dynamic_model, data_dir=tmp_path, encoder_batch_size=4, encoder_threads=1
    )
    enc = LocalEncoder.from_settings(settings)
    assert (enc.batch_size, enc.threads) == (4, 1)

    async def main() -> None:
        await enc.health()
        assert enc._loaded is not None
        await enc.close()

    asyncio.run(main())


def test_broken_model_file_is_an_encoder_error(tmp_path: Path) -> None:
    folder = build_model_dir(tmp_path / "m")
    (folder / "visual.onnx").write_bytes(b"garbage")
    with pytest.raises(EncoderError, match=r"visual\.onnx"):
        asyncio.run(make(folder).health())


@pytest.mark.parametrize("spinning", [False, True])
def test_intra_op_spinning_is_off_unless_asked(dynamic_model: Path, spinning: bool) -> None:
    # Off by default: spinning intra-op threads take the cores the ingest decoders need.
    enc = make(dynamic_model)
    session = OrtSession(enc.files.visual, spinning=spinning)
    options = session._session.get_session_options()
    entry = options.get_session_config_entry("session.intra_op.allow_spinning")
    assert entry == ("1" if spinning else "0")
    default = OrtSession(enc.files.visual)._session.get_session_options()
    assert default.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    pixels = np.zeros((2, 3, enc.image_size, enc.image_size), dtype=np.float32)
    assert session.run({"pixel_values": pixels}).shape[0] == 2  # still runs
