"""ServiceEncoder against a real clip-server serving the same folder as the local encoder."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.encoder.resilience import EncoderProtocolError
from clipsearch.encoder.service import ServiceEncoder
from tests.helpers import encoded, photo
from tests.service.conftest import MODEL_NAME, ClipServer

pytestmark = pytest.mark.encoder_venv

TEXTS = [
    "a red square",
    "a small blue circle on the left",
    "ünïcödé text with accents, emoji 🐱 and 中文",
    "  leading and trailing spaces  ",
    # Longer than 77 tokens: both sides must truncate the same way.
    " ".join(f"word{i}" for i in range(120)),
]


def sample_images() -> dict[str, bytes]:
    rgba = photo(300, 200, seed=4)
    rgba.putalpha(128)
    exif = Image.Exif()
    exif[0x0112] = 8  # rotated 90° counter-clockwise to display
    return {
        "png": encoded(photo(320, 240, seed=1), "PNG"),
        "jpeg": encoded(photo(500, 375, seed=2), "JPEG", quality=90),
        "big-jpeg": encoded(photo(3000, 2000, seed=3), "JPEG", quality=92),  # shrunk first
        "rgba-png": encoded(rgba, "PNG"),
        "gif": encoded(photo(200, 160, seed=5).convert("P"), "GIF"),
        "exif-jpeg": encoded(photo(400, 300, seed=6), "JPEG", quality=95, exif=exif),
        "webp": encoded(photo(256, 256, seed=7), "WEBP", quality=90),
    }


@pytest.fixture(scope="module")
def local(service_model: Path) -> LocalEncoder:
    return LocalEncoder(ModelFiles(service_model), model_name=MODEL_NAME)


@pytest.fixture
def service(clip_server: ClipServer, service_model: Path) -> Iterator[ServiceEncoder]:
    enc = ServiceEncoder(
        clip_server.url, model_name=MODEL_NAME, model_path=service_model, batch_size=4
    )
    yield enc
    asyncio.run(enc.close())


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.sum(a * b, axis=1) / (
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    )
    return out


def test_text_vectors_match_the_local_encoder(service: ServiceEncoder, local: LocalEncoder) -> None:
    got = asyncio.run(service.encode_texts(TEXTS))
    want = asyncio.run(local.encode_texts(TEXTS))
    cos = rowwise_cosine(got, want)
    assert cos.min() >= 0.9999, dict(zip(TEXTS, cos.round(6), strict=True))
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)


def test_image_vectors_match_the_local_encoder(
    service: ServiceEncoder, local: LocalEncoder
) -> None:
    images = sample_images()
    got = asyncio.run(service.encode_images(list(images.values())))
    want = asyncio.run(local.encode_images(list(images.values())))
    cos = dict(zip(images, rowwise_cosine(got, want).round(6), strict=True))
    assert min(cos.values()) >= 0.9999, cos


def test_model_identity_is_learned_and_matches_local(
    service: ServiceEncoder, local: LocalEncoder
) -> None:
    asyncio.run(service.health())  # /dry_run code 0, then a probe encode
    assert service.dim == local.dim
    assert service.fingerprint == local.fingerprint


def test_identity_without_a_model_folder(clip_server: ClipServer) -> None:
    enc = ServiceEncoder(clip_server.url, model_name=MODEL_NAME)
    dim = asyncio.run(enc.probe())
    assert enc.fingerprint == f"service:{MODEL_NAME}:{dim}"
    asyncio.run(enc.close())


def test_null_embedding_from_the_real_server_is_an_error(service: ServiceEncoder) -> None:
    # A doc with neither text nor image: clip-server answers 200 with "embedding": null.
    with pytest.raises(EncoderProtocolError, match="no embedding"):
        asyncio.run(service._encode_chunk([{}]))
    with pytest.raises(EncoderProtocolError, match="empty text"):
        asyncio.run(service.encode_texts([""]))


def test_executor_failure_is_reported(service: ServiceEncoder) -> None:
    # Bytes that are no image: jina answers HTTP 200 with header.status.code = 1.
    blob = base64.b64encode(b"definitely not an image").decode()
    with pytest.raises(EncoderProtocolError, match="UnidentifiedImageError"):
        asyncio.run(service._encode_chunk([{"blob": blob}]))


def test_rank_scores_every_candidate_consistently(service: ServiceEncoder) -> None:
    images = sample_images()
    candidates: list[str | bytes] = ["a red square", images["png"], "a blue circle", images["gif"]]
    ranked = asyncio.run(service.rank("a red square", candidates))

    assert sorted(r.index for r in ranked) == [0, 1, 2, 3]
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    assert sum(r.score for r in ranked) == pytest.approx(1.0, abs=1e-4)  # softmax
    query = asyncio.run(service.encode_texts(["a red square"]))[0]
    text_vecs = asyncio.run(service.encode_texts(["a red square", "a blue circle"]))
    image_vecs = asyncio.run(service.encode_images([images["png"], images["gif"]]))
    expected = {0: text_vecs[0], 1: image_vecs[0], 2: text_vecs[1], 3: image_vecs[1]}
    for r in ranked:
        assert r.cosine == pytest.approx(float(query @ expected[r.index]), abs=1e-3)


def test_large_batches_are_chunked_and_ordered(
    service: ServiceEncoder, local: LocalEncoder
) -> None:
    texts = [f"shape number {i}" for i in range(11)]  # batch_size 4 -> 3 calls
    got = asyncio.run(service.encode_texts(texts))
    want = asyncio.run(local.encode_texts(texts))
    assert rowwise_cosine(got, want).min() >= 0.9999
