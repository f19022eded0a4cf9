"""``rerank: true`` on each backend: every hit keeps its search score and gains CLIP's
softmax over the page (rerank_score) and the cosine (rerank_cosine), best first, on text,
image and batch searches; without it the fields are null."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.collections.conftest import Api, pictures


def _check_page(hits: list[dict[str, Any]]) -> None:
    assert hits
    cosine = np.array([h["rerank_cosine"] for h in hits])
    softmax = np.array([h["rerank_score"] for h in hits])
    np.testing.assert_allclose(cosine, [h["score"] for h in hits], atol=1e-5)  # local mode
    want = np.exp(100 * cosine - (100 * cosine).max())
    np.testing.assert_allclose(softmax, want / want.sum(), rtol=1e-5, atol=1e-9)
    assert list(softmax) == sorted(softmax, reverse=True)  # best first


def test_rerank_adds_clip_softmax_to_every_search(api: Api, collection: str) -> None:
    pngs, captions = pictures(8, seed=41)
    ids = api.stored(pngs, captions, collection=collection)
    params = {"collection": collection}
    text = api.client.post(
        "/v1/search/text", params=params, json={"query": captions[0], "top_k": 5, "rerank": True}
    )
    assert text.status_code == 200, text.text
    _check_page(text.json()["hits"])
    plain = api.client.post(
        "/v1/search/text", params=params, json={"query": captions[0], "top_k": 5}
    ).json()["hits"]
    assert [h["id"] for h in plain] == [h["id"] for h in text.json()["hits"]]
    assert all(h["rerank_score"] is None and h["rerank_cosine"] is None for h in plain)
    image = api.client.post(
        "/v1/search/image",
        params=params,
        files={"file": ("q.png", pngs[1], "image/png")},
        data={"target": "texts", "top_k": "4", "rerank": "true"},
    )
    assert image.status_code == 200, image.text
    _check_page(image.json()["hits"])
    batch = api.client.post(
        "/v1/search/batch",
        params=params,
        json={"queries": [{"text": captions[2]}, {"image_id": ids[3]}], "rerank": True},
    )
    assert batch.status_code == 200, batch.text
    for result in batch.json()["results"]:
        _check_page(result["hits"])
        assert sum(h["rerank_score"] for h in result["hits"]) == pytest.approx(1.0)


def test_rerank_must_be_a_boolean(api: Api) -> None:
    r = api.client.post("/v1/search/text", json={"query": "a", "rerank": "maybe"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input"
