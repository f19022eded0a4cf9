"""Near duplicates on each backend: re-encoded, resized and cropped copies of the same
picture are found by ``GET /v1/images/{id}/similar`` (first) and grouped by
``GET /v1/collections/{name}/duplicates``; bad input answers 4xx with its code.

Threshold: measured on Lite with the tiny ``shapes`` model on these copies (JPEG q70, 0.5x,
1.5x, a 2% crop on each side): copy to original cosine 0.9804 (the crop) to 1.0000, while
the closest two *different* pictures of the set scored 0.61 (a copy to another original:
0.61 too). So 0.95 separates them with room on both sides;
``test_copy_scores_are_what_the_threshold_assumes`` fails if a change of model or pictures
takes that room away.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from tests.collections.conftest import Api, pictures

THRESHOLD = 0.95
Copy = Callable[[Image.Image], Image.Image]


def _jpeg70(img: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=70)
    return Image.open(io.BytesIO(buf.getvalue()))


def _scale(f: float) -> Copy:
    def scaled(img: Image.Image) -> Image.Image:
        size = (round(img.width * f), round(img.height * f))
        return img.resize(size, Image.Resampling.BICUBIC)

    return scaled


def _crop(img: Image.Image) -> Image.Image:
    dx, dy = round(img.width * 0.02), round(img.height * 0.02)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


COPIES: list[Copy] = [_jpeg70, _scale(0.5), _scale(1.5), _crop]


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus(api: Api) -> tuple[str, list[str], dict[str, list[str]]]:
    """8 distinct pictures; the first 3 with 4, 2 and 1 copies: (collection, originals,
    original id -> its copies' ids)."""
    collection = f"dup_{api.backend}"
    pngs, captions = pictures(8, seed=23)
    originals = api.stored(pngs, captions, collection=collection)
    copies: dict[str, list[str]] = {}
    for k, n in enumerate((4, 2, 1)):
        img = Image.open(io.BytesIO(pngs[k]))
        made = [_png(copy(img)) for copy in COPIES[:n]]
        copies[originals[k]] = api.stored(made, collection=collection)
    return collection, originals, copies


def _similar(api: Api, collection: str, image_id: str, **params: object) -> list[dict[str, object]]:
    r = api.client.get(
        f"/v1/images/{image_id}/similar", params={"collection": collection, **params}
    )
    assert r.status_code == 200, r.text
    hits: list[dict[str, object]] = r.json()["hits"]
    return hits


def test_copy_scores_are_what_the_threshold_assumes(
    api: Api, corpus: tuple[str, list[str], dict[str, list[str]]]
) -> None:
    collection, originals, copies = corpus
    for original, made in copies.items():
        hits = _similar(api, collection, original, top_k=20)
        scores = {h["id"]: float(h["score"]) for h in hits}  # type: ignore[arg-type]
        assert min(scores[c] for c in made) >= 0.97, scores
    # Distinct pictures stay below the threshold, with a margin.
    for a in originals:
        others = [h for h in _similar(api, collection, a, top_k=20) if h["id"] in originals]
        assert max(float(h["score"]) for h in others) < THRESHOLD - 0.01  # type: ignore[arg-type]


def test_similar_ranks_the_copies_first(
    api: Api, corpus: tuple[str, list[str], dict[str, list[str]]]
) -> None:
    collection, originals, copies = corpus
    for original, made in copies.items():
        hits = _similar(api, collection, original, top_k=6)
        ids = [h["id"] for h in hits]
        assert original not in ids  # the image itself is left out
        assert set(ids[: len(made)]) == set(made)
        assert hits[0]["image_url"]
        assert hits[0]["thumbnail_url"]
    above = _similar(api, collection, originals[0], min_score=THRESHOLD)
    assert {h["id"] for h in above} == set(copies[originals[0]])
    # A copy finds its original and its siblings.
    first_copy = copies[originals[0]][0]
    near = {h["id"] for h in _similar(api, collection, first_copy, min_score=THRESHOLD)}
    assert near == {originals[0], *copies[originals[0]][1:]}


def test_duplicates_groups_each_original_with_its_copies(
    api: Api, corpus: tuple[str, list[str], dict[str, list[str]]]
) -> None:
    collection, originals, copies = corpus
    r = api.client.get(f"/v1/collections/{collection}/duplicates", params={"min_score": THRESHOLD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scanned"] == 8 + 7
    assert body["next_cursor"] is None
    groups = [{m["id"] for m in g["members"]} for g in body["groups"]]
    assert groups == [{o, *copies[o]} for o in originals[:3]]  # largest first
    for g in body["groups"]:
        assert g["size"] == len(g["members"])
        first = g["members"][0]
        # The reference is the copy with the most pixels (the 1.5x one when there is one).
        assert first["score"] == pytest.approx(1.0, abs=1e-4)
        assert all(m["score"] >= THRESHOLD for m in g["members"])


def test_duplicates_pages_give_each_group_once(
    api: Api, corpus: tuple[str, list[str], dict[str, list[str]]]
) -> None:
    collection, originals, copies = corpus
    seen: list[set[str]] = []
    cursor: str | None = None
    scanned = 0
    for _ in range(20):
        params: dict[str, object] = {"min_score": THRESHOLD, "limit": 4}
        if cursor:
            params["cursor"] = cursor
        r = api.client.get(f"/v1/collections/{collection}/duplicates", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["scanned"] <= 4
        scanned += body["scanned"]
        seen += [{m["id"] for m in g["members"]} for g in body["groups"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert scanned == 15
    assert sorted(seen, key=len) == sorted(({o, *copies[o]} for o in originals[:3]), key=len)


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/images/{id}/similar", {"min_score": 1.5}, 422, "invalid_min_score"),
        ("/v1/images/{id}/similar", {"min_score": -1.01}, 422, "invalid_min_score"),
        ("/v1/images/{id}/similar", {"top_k": 0}, 422, "top_k_too_large"),
        ("/v1/images/{id}/similar", {"top_k": 101}, 422, "top_k_too_large"),
        ("/v1/images/{id}/similar", {"filter": "{not json"}, 422, "invalid_filter"),
        ("/v1/images/{id}/similar", {"filter": '{"a b": 1}'}, 422, "invalid_filter"),
        ("/v1/images/{id}/similar", {"min_score": "x"}, 422, "invalid_input"),
        ("/v1/images/nope/similar", {}, 404, "image_not_found"),
        ("/v1/images/{id}/similar", {"collection": "missing_coll"}, 404, "unknown_collection"),
        ("/v1/collections/{c}/duplicates", {"min_score": 2}, 422, "invalid_min_score"),
        ("/v1/collections/{c}/duplicates", {"min_score": -3}, 422, "invalid_min_score"),
        ("/v1/collections/{c}/duplicates", {"limit": 0}, 422, "invalid_limit"),
        ("/v1/collections/{c}/duplicates", {"limit": 10001}, 422, "invalid_limit"),
        ("/v1/collections/{c}/duplicates", {"cursor": "x" * 65}, 422, "invalid_cursor"),
        ("/v1/collections/missing_coll/duplicates", {}, 404, "unknown_collection"),
        ("/v1/collections/bad name!/duplicates", {}, 422, "invalid_input"),
    ],
)
def test_bad_input(
    api: Api,
    corpus: tuple[str, list[str], dict[str, list[str]]],
    path: str,
    params: dict[str, object],
    status: int,
    code: str,
) -> None:
    collection, originals, _ = corpus
    url = path.format(id=originals[0], c=collection)
    query = {"collection": collection, **params} if "/images/" in path else params
    r = api.client.get(url, params=query)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
