"""``min_score: "auto"`` on each backend: the threshold ``clipsearch evaluate`` computes for
the shapes model on a held-out set (:func:`clipsearch.evaluation.separating_threshold`),
stored with ``PUT /v1/collections/{name}/threshold``. A query for a shape and colour the
collection holds clears it; a query of words the model never saw (``zzzz qqqq``) gets
``no_match`` and no hits; ``auto`` without a stored threshold is 409 ``no_threshold``; the
route's bad input is a 4xx with its code; the threshold is shown with the collection."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from clipsearch.demo import shapes
from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_files import ModelFiles
from clipsearch.evaluation import separating_threshold
from tests.collections.conftest import Api, pictures
from tests.helpers import SHAPES_MODEL, encoded

UNSEEN = "zzzz qqqq"  # no word the shapes model knows


@pytest.fixture(scope="module")
def threshold() -> float:
    """The shapes model's threshold on a held-out set (not the collection's pictures)."""
    enc = LocalEncoder(ModelFiles(SHAPES_MODEL), model_name="shapes")
    samples = list(shapes.iter_samples(300, 7))

    async def vectors() -> tuple[np.ndarray, np.ndarray]:
        texts = await enc.encode_texts([c for _, c in samples])
        return texts, await enc.encode_images([encoded(i) for i, _ in samples])

    texts, images = asyncio.run(vectors())
    value = separating_threshold(texts @ images.T, list(range(len(samples))))["min_score"]
    assert 0.0 < value < 1.0
    return value


def _error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


def _search(api: Api, collection: str, query: str, **kw: Any) -> Any:
    body = {"query": query, "min_score": "auto", "top_k": 5, **kw}
    return api.client.post("/v1/search/text", params={"collection": collection}, json=body)


def test_auto_uses_the_stored_threshold(api: Api, collection: str, threshold: float) -> None:
    pngs, captions = pictures(24, seed=11)
    api.stored(pngs, captions, collection=collection)
    _error(_search(api, collection, captions[0]), 409, "no_threshold")
    fingerprint = api.client.get(f"/v1/collections/{collection}").json()["fingerprint"]
    r = api.client.put(
        f"/v1/collections/{collection}/threshold",
        json={"min_score": threshold, "model_fingerprint": fingerprint},
    )
    assert r.status_code == 200, r.text
    assert r.json()["min_score_auto"] == pytest.approx(threshold)
    shown = api.client.get(f"/v1/collections/{collection}").json()["min_score_auto"]
    assert shown == pytest.approx(threshold)

    found = _search(api, collection, captions[0])  # a shape and colour it holds
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["no_match"] is False
    assert body["hits"]
    assert all(h["score"] >= threshold - 1e-6 for h in body["hits"])

    unseen = _search(api, collection, UNSEEN)
    assert unseen.status_code == 200, unseen.text
    assert unseen.json()["hits"] == []
    assert unseen.json()["no_match"] is True
    # Without "auto" the same query has hits, and no_match is not said.
    plain = api.client.post(
        "/v1/search/text", params={"collection": collection}, json={"query": UNSEEN}
    ).json()
    assert plain["hits"]
    assert plain["no_match"] is None
    batch = api.client.post(
        "/v1/search/batch",
        params={"collection": collection},
        json={"queries": [{"text": captions[1]}, {"text": UNSEEN}], "min_score": "auto"},
    )
    assert batch.status_code == 200, batch.text
    assert [res["no_match"] for res in batch.json()["results"]] == [False, True]


def test_threshold_route_bad_input(api: Api, collection: str) -> None:
    pngs, captions = pictures(2, seed=12)
    api.stored(pngs, captions, collection=collection)
    url = f"/v1/collections/{collection}/threshold"
    _error(api.client.put(url, json={"min_score": 1.5}), 422, "invalid_input")
    _error(api.client.put(url, json={"min_score": "auto"}), 422, "invalid_input")
    _error(api.client.put(url, json={}), 422, "invalid_input")
    _error(api.client.put(url, json={"min_score": 0.2, "extra": 1}), 422, "invalid_input")
    mismatch = api.client.put(url, json={"min_score": 0.2, "model_fingerprint": "f" * 64})
    _error(mismatch, 409, "model_mismatch")
    _error(api.client.put("/v1/collections/nope_x1/threshold", json={"min_score": 0.2}), 404,
           "unknown_collection")  # fmt: skip
    _error(api.client.put("/v1/collections/bad-name!/threshold", json={"min_score": 0.2}), 422,
           "invalid_input")  # fmt: skip
    assert api.client.put(url, json={"min_score": 0.2}).json()["min_score_auto"] == 0.2
    removed = api.client.put(url, json={"min_score": None})
    assert removed.json()["min_score_auto"] is None
    _error(_search(api, collection, captions[0]), 409, "no_threshold")
    _error(_search(api, collection, captions[0], min_score="best"), 422, "invalid_input")
