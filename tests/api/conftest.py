"""One real gateway for the API tests: LocalEncoder + the bundled tiny ``shapes`` model +
Milvus Lite in a temp dir + the file blob store, built once per session with a corpus of
generated shape pictures ingested through ``POST /v1/images``.

Tests that write or delete use their own ``?collection=`` so the shared corpus stays intact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.demo import shapes
from tests.helpers import SHAPES_MODEL, encoded

CORPUS_SIZE = 160
# A few scenes that must exist in the corpus, whatever the random draw gives.
RED_CIRCLES = [
    shapes.Scene(first=("red", "circle"), size=size, position=pos)
    for size in ("small", "big")
    for pos in ("left", "right", "centre")
]


@dataclass
class Corpus:
    ids: list[str]
    captions: list[str]
    pngs: list[bytes]


@dataclass
class Gateway:
    client: TestClient
    settings: Settings
    corpus: Corpus

    def stats(self, collection: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get("/v1/stats").json()
        return body if collection is None else body["collections"].get(collection, {})


def make_corpus() -> tuple[list[bytes], list[str]]:
    rng = np.random.default_rng(7)
    pngs, captions = [], []
    for scene in RED_CIRCLES:
        pngs.append(encoded(shapes.render(scene, rng)))
        captions.append(shapes.caption_for(scene))
    for image, caption in shapes.iter_samples(CORPUS_SIZE - len(RED_CIRCLES), shapes.HELDOUT_SEED):
        pngs.append(encoded(image))
        captions.append(caption)
    return pngs, captions


def upload(
    client: TestClient,
    pngs: list[bytes],
    captions: list[str] | None = None,
    collection: str | None = None,
    **form: Any,
) -> Any:
    files = [("files", (f"shape_{i:04d}.png", data, "image/png")) for i, data in enumerate(pngs)]
    data: dict[str, Any] = dict(form)
    if captions is not None:
        data["captions"] = captions
    params = {"collection": collection} if collection else {}
    return client.post("/v1/images", files=files, data=data, params=params)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    assert (SHAPES_MODEL / "textual.onnx").is_file(), f"tiny model missing at {SHAPES_MODEL}"
    data_dir = tmp_path_factory.mktemp("gateway")
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        model_path=SHAPES_MODEL,
        max_upload_bytes=2 * 1024 * 1024,
        max_request_bytes=16 * 1024 * 1024,
        # Room for base64 pictures in JSON searches (test_limits_are_checked_once_in_the_use_case).
        max_json_bytes_search=16 * 1024 * 1024,
        max_top_k=50,
        max_batch_queries=16,
        max_text_chars=200,
        max_files_per_request=64,
    )
    app = create_app(settings)
    pngs, captions = make_corpus()
    with TestClient(app, raise_server_exceptions=False) as client:
        ids: list[str] = []
        for start in range(0, len(pngs), 64):
            r = upload(client, pngs[start : start + 64], captions[start : start + 64])
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            assert {i["status"] for i in items} <= {"stored", "duplicate"}, items
            ids.extend(i["id"] for i in items)
        yield Gateway(client, settings, Corpus(ids, captions, pngs))
