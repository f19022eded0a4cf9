"""``POST /v1/similarity``: one image against texts, on each backend. The cosine is the one
a search reports, the softmax is CLIP's (logit scale 100) over the texts in request order,
all three ways of sending the image agree, and bad input is a 4xx with its code."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from tests.collections.conftest import Api, pictures


def _score(api: Api, collection: str | None = None, **kw: Any) -> Any:
    params = {"collection": collection} if collection else {}
    return api.client.post("/v1/similarity", params=params, **kw)


def _error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert err["code"] == code, err
    return err


def test_scores_are_cosine_and_clip_softmax_in_request_order(api: Api, collection: str) -> None:
    pngs, captions = pictures(6, seed=31)
    ids = api.stored(pngs, captions, collection=collection)
    texts = [captions[1], captions[0], "a photo of nothing at all", captions[2]]
    r = _score(api, collection, json={"image_id": ids[0], "texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image_id"] == ids[0]
    assert [s["text"] for s in body["scores"]] == texts  # request order, not by score
    cosine = np.array([s["cosine"] for s in body["scores"]])
    softmax = np.array([s["softmax"] for s in body["scores"]])
    expected = np.exp(100 * cosine - (100 * cosine).max())
    np.testing.assert_allclose(softmax, expected / expected.sum(), rtol=1e-5, atol=1e-9)
    assert softmax.sum() == pytest.approx(1.0)
    # The cosine of the picture and its caption is what a text search scores it.
    search = api.client.post(
        "/v1/search/text",
        params={"collection": collection},
        json={"query": captions[0], "top_k": 6},
    ).json()["hits"]
    by_id = {h["id"]: h["score"] for h in search}
    assert cosine[1] == pytest.approx(by_id[ids[0]], abs=1e-4)


def test_upload_base64_and_stored_id_agree(api: Api, collection: str) -> None:
    pngs, captions = pictures(3, seed=32)
    ids = api.stored(pngs, captions, collection=collection)
    texts = [captions[0], captions[1]]
    by_id = _score(api, collection, json={"image_id": ids[0], "texts": texts}).json()
    b64 = base64.b64encode(pngs[0]).decode()
    by_b64 = _score(api, json={"image_base64": b64, "texts": texts}).json()
    by_file = _score(
        api, files={"file": ("q.png", pngs[0], "image/png")}, data={"texts": texts}
    ).json()
    # multipart with an image_id field instead of a file (a part without a file name)
    id_parts = [("image_id", (None, ids[0])), *[("texts", (None, t)) for t in texts]]
    id_form = _score(api, collection, files=id_parts).json()
    assert by_b64["image_id"] == by_file["image_id"] == ids[0]  # the sha256 of the bytes
    for other in (by_b64, by_file, id_form):
        for a, b in zip(by_id["scores"], other["scores"], strict=True):
            assert a["text"] == b["text"]
            assert a["cosine"] == pytest.approx(b["cosine"], abs=1e-4)
            assert a["softmax"] == pytest.approx(b["softmax"], abs=1e-3)


def test_bad_input(api: Api, collection: str) -> None:
    pngs, captions = pictures(1, seed=33)
    (image_id,) = api.stored(pngs, captions, collection=collection)
    b64 = base64.b64encode(pngs[0]).decode()
    _error(_score(api, collection, json={"image_id": image_id, "texts": []}), 422, "no_texts")
    _error(_score(api, files={"file": ("q.png", pngs[0], "image/png")}, data={}), 422, "no_texts")
    limit = api.settings.max_similarity_texts
    many = [f"text {i}" for i in range(limit + 1)]
    err = _error(_score(api, json={"image_base64": b64, "texts": many}), 422, "too_many_texts")
    assert err["details"] == {"max_similarity_texts": limit}
    form = _score(api, files={"file": ("q.png", pngs[0], "image/png")}, data={"texts": many})
    _error(form, 422, "too_many_texts")
    _error(_score(api, json={"image_base64": b64, "texts": ["  "]}), 422, "empty_text")
    both = {"image_base64": b64, "image_id": image_id, "texts": ["a"]}
    _error(_score(api, collection, json=both), 422, "invalid_input")
    _error(_score(api, json={"texts": ["a"]}), 422, "invalid_input")  # no image at all
    _error(
        _score(
            api,
            collection,
            files={"file": ("q.png", pngs[0], "image/png")},
            data={"image_id": image_id, "texts": ["a"]},
        ),
        422,
        "invalid_query",
    )
    unknown = {"image_id": "0" * 64, "texts": ["a"]}
    _error(_score(api, collection, json=unknown), 404, "image_not_found")
    _error(_score(api, "no_such_collection", json=unknown), 404, "unknown_collection")
    junk = _score(
        api, files={"file": ("q.png", b"not a picture", "image/png")}, data={"texts": ["a"]}
    )
    _error(junk, 422, "invalid_image")
    _error(_score(api, json={"image_base64": "%%%", "texts": ["a"]}), 422, "invalid_base64")
    _error(_score(api, json={"image_base64": base64.b64encode(b"nope").decode(), "texts": ["a"]}),
           422, "invalid_image")  # fmt: skip
    _error(_score(api, content=b"x", headers={"content-type": "text/plain"}), 415,
           "unsupported_media_type")  # fmt: skip
    _error(_score(api, content=b"{nope", headers={"content-type": "application/json"}), 422,
           "invalid_body")  # fmt: skip
