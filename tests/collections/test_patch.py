"""PATCH /v1/images/{id} and /v1/texts/{id}, and uploads of pictures already stored that
bring a new caption or metadata (``updated``), on each backend of the suite."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.collections.conftest import Api, pictures

CAPTIONS = [
    "a small red circle on the left",
    "a big blue square at the top",
    "a green triangle below a green cross",
]


def _patch(api: Api, image_id: str, collection: str, body: Any) -> Any:
    return api.client.patch(f"/v1/images/{image_id}", params={"collection": collection}, json=body)


def _record(api: Api, image_id: str, collection: str) -> dict[str, Any]:
    r = api.client.get(f"/v1/images/{image_id}", params={"collection": collection})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _texts(api: Api, collection: str, query: str, **opts: Any) -> list[dict[str, Any]]:
    body = {"query": query, "target": "texts", "top_k": 10, **opts}
    r = api.client.post("/v1/search/text", params={"collection": collection}, json=body)
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def _error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


def test_patch_metadata_merge_then_replace(api: Api, collection: str) -> None:
    pngs, caps = pictures(1, seed=21)
    [image_id] = api.stored(pngs, caps, collection=collection, metadata='{"a": 1, "b": "x"}')
    r = _patch(api, image_id, collection, {"metadata": {"b": "y", "c": True}})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"a": 1, "b": "y", "c": True}
    assert _record(api, image_id, collection)["metadata"] == {"a": 1, "b": "y", "c": True}
    # The caption text got the same change: a text search filter sees it too.
    hits = _texts(api, collection, caps[0], filter={"c": True, "b": {"ne": "x"}})
    assert [h["image_id"] for h in hits] == [image_id]

    r = _patch(api, image_id, collection, {"metadata": {"z": 2}, "metadata_mode": "replace"})
    assert r.status_code == 200, r.text
    assert _record(api, image_id, collection)["metadata"] == {"z": 2}
    assert _texts(api, collection, caps[0], filter={"a": {"exists": True}}) == []
    assert len(_texts(api, collection, caps[0], filter={"z": {"gte": 2}})) == 1


def test_add_remove_and_replace_captions(api: Api, collection: str) -> None:
    pngs, _ = pictures(1, seed=22)
    [image_id] = api.stored(pngs, [CAPTIONS[0]], collection=collection)
    r = _patch(api, image_id, collection, {"add_captions": [CAPTIONS[1]]})
    assert r.status_code == 200, r.text
    assert r.json()["captions"] == [CAPTIONS[0], CAPTIONS[1]]
    rec = _record(api, image_id, collection)
    assert (rec["caption"], rec["captions"]) == (CAPTIONS[0], [CAPTIONS[0], CAPTIONS[1]])
    # The new caption was encoded: text search finds it, linked to the image.
    top = _texts(api, collection, CAPTIONS[1])[0]
    assert (top["text"], top["image_id"]) == (CAPTIONS[1], image_id)

    # Removing the main caption makes the remaining one main; its text is gone.
    r = _patch(api, image_id, collection, {"remove_captions": [CAPTIONS[0]]})
    assert r.status_code == 200, r.text
    rec = _record(api, image_id, collection)
    assert (rec["caption"], rec["captions"]) == (CAPTIONS[1], [CAPTIONS[1]])
    assert CAPTIONS[0] not in {h["text"] for h in _texts(api, collection, CAPTIONS[0])}

    # A new main caption replaces the old main caption's text; all in one request.
    r = _patch(
        api,
        image_id,
        collection,
        {"caption": CAPTIONS[2], "metadata": {"k": "v"}, "add_captions": [CAPTIONS[0]]},
    )
    assert r.status_code == 200, r.text
    rec = _record(api, image_id, collection)
    assert rec["caption"] == CAPTIONS[2]
    assert rec["captions"] == [CAPTIONS[2], CAPTIONS[0]]
    assert rec["metadata"] == {"k": "v"}
    texts = {h["text"]: h for h in _texts(api, collection, CAPTIONS[2])}
    assert set(texts) == {CAPTIONS[2], CAPTIONS[0]}
    assert texts[CAPTIONS[2]]["metadata"] == {"k": "v"}  # new captions carry the metadata
    # The image vector is untouched: searching by the image still finds it first, at 1.
    r = api.client.post(
        "/v1/search/image",
        params={"collection": collection},
        json={"image_id": image_id, "target": "images", "top_k": 1},
    )
    assert r.json()["hits"][0]["id"] == image_id
    assert r.json()["hits"][0]["score"] == pytest.approx(1.0, abs=1e-4)


def test_reupload_with_new_caption_or_metadata_is_updated(api: Api, collection: str) -> None:
    pngs, caps = pictures(2, seed=23)
    r = api.upload(pngs[:1], collection=collection)
    [item] = r.json()["items"]
    assert item["status"] == "stored"
    image_id = item["id"]

    def again(**form: Any) -> str:
        r = api.upload(pngs[:1], collection=collection, **form)
        assert r.status_code == 200, r.text
        return str(r.json()["items"][0]["status"])

    assert again() == "duplicate"
    assert again(captions=[caps[0]]) == "updated"
    assert _record(api, image_id, collection)["captions"] == [caps[0]]
    assert _texts(api, collection, caps[0])[0]["image_id"] == image_id
    assert again(captions=[caps[0]]) == "duplicate"  # nothing new
    assert again(metadata='{"album": "trip"}') == "updated"
    assert again(metadata='{"album": "trip"}') == "duplicate"
    assert again(captions=[caps[1]], metadata='{"year": 2024}') == "updated"
    rec = _record(api, image_id, collection)
    assert rec["metadata"] == {"album": "trip", "year": 2024}  # merged, not replaced
    assert rec["caption"] == caps[0]  # an added caption, the main one stays
    assert rec["captions"] == [caps[0], caps[1]]


def test_patch_text_metadata_and_text(api: Api, collection: str) -> None:
    params = {"collection": collection}
    r = api.client.post(
        "/v1/texts", params=params, json={"texts": [{"text": CAPTIONS[0], "metadata": {"n": 1}}]}
    )
    old_id = r.json()["items"][0]["id"]
    r = api.client.patch(f"/v1/texts/{old_id}", params=params, json={"metadata": {"lang": "en"}})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["metadata"]) == (old_id, {"n": 1, "lang": "en"})
    r = api.client.patch(
        f"/v1/texts/{old_id}",
        params=params,
        json={"text": CAPTIONS[1], "metadata": {"n": 2}, "metadata_mode": "replace"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["replaced_id"] == old_id
    assert out["id"] != old_id
    assert (out["text"], out["metadata"]) == (CAPTIONS[1], {"n": 2})
    hits = _texts(api, collection, CAPTIONS[1])
    assert [h["id"] for h in hits] == [out["id"]]  # the old record is gone
    assert hits[0]["metadata"] == {"n": 2}
    # A caption's text is changed through its image.
    pngs, caps = pictures(1, seed=24)
    [image_id] = api.stored(pngs, caps, collection=collection)
    caption_id = next(h["id"] for h in _texts(api, collection, caps[0]) if h["image_id"])
    r = api.client.patch(f"/v1/texts/{caption_id}", params=params, json={"text": "x"})
    _error(r, 422, "caption_text")
    r = api.client.patch(f"/v1/texts/{caption_id}", params=params, json={"metadata": {"m": 1}})
    assert r.status_code == 200
    assert r.json()["image_id"] == image_id


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "empty_patch"),
        ({"metadata": {"k": "v" * 20000}}, 422, "invalid_metadata"),
        ({"metadata": "not an object"}, 422, "invalid_input"),
        ({"caption": "x" * 2001}, 422, "text_too_long"),
        ({"caption": "   "}, 422, "empty_text"),
        ({"add_captions": ["ok", "y" * 2001]}, 422, "text_too_long"),
        ({"add_captions": ["a b"], "remove_captions": ["a  b"]}, 422, "conflicting_captions"),
        ({"remove_captions": ["never added"]}, 404, "caption_not_found"),
        ({"metadata_mode": "upsert", "metadata": {}}, 422, "invalid_input"),
        ({"captions": ["unknown field"]}, 422, "invalid_input"),
    ],
)
def test_bad_image_patches(api: Api, collection: str, body: Any, status: int, code: str) -> None:
    pngs, caps = pictures(1, seed=25)
    [image_id] = api.stored(pngs, caps, collection=collection)
    _error(_patch(api, image_id, collection, body), status, code)
    rec = _record(api, image_id, collection)
    assert (rec["captions"], rec["metadata"]) == ([caps[0]], {})  # nothing was written


def test_image_patch_refusals(api: Api, collection: str) -> None:
    pngs, caps = pictures(1, seed=26)
    [image_id] = api.stored(pngs, caps, collection=collection, metadata='{"big": ""}')
    _error(_patch(api, "0" * 64, collection, {"metadata": {"a": 1}}), 404, "image_not_found")
    _error(_patch(api, image_id, "t_nope_nope", {"metadata": {"a": 1}}), 404, "unknown_collection")
    # Fine alone, over the limit once merged with what is stored: refused, nothing written.
    limit = api.settings.max_metadata_bytes
    _patch(api, image_id, collection, {"metadata": {"big": "b" * (limit // 2)}})
    r = _patch(api, image_id, collection, {"metadata": {"more": "m" * (limit // 2)}})
    _error(r, 422, "invalid_metadata")
    assert set(_record(api, image_id, collection)["metadata"]) == {"big"}
    r = api.client.patch(
        f"/v1/images/{image_id}",
        params={"collection": collection},
        content=b'{"metadata": ',
        headers={"Content-Type": "application/json"},
    )
    _error(r, 422, "invalid_json")


def test_bad_text_patches(api: Api, collection: str) -> None:
    params = {"collection": collection}
    r = api.client.post("/v1/texts", params=params, json={"texts": [{"text": "a red circle"}]})
    text_id = r.json()["items"][0]["id"]
    cases: list[tuple[str, Any, int, str]] = [
        ("0" * 64, {"metadata": {"a": 1}}, 404, "text_not_found"),
        (text_id, {}, 422, "empty_patch"),
        (text_id, {"text": "   "}, 422, "empty_text"),
        (text_id, {"text": "z" * 2001}, 422, "text_too_long"),
        (text_id, {"metadata": {"k": "v" * 20000}}, 422, "invalid_metadata"),
        (text_id, {"vector": [1, 2]}, 422, "invalid_input"),
    ]
    for tid, body, status, code in cases:
        _error(api.client.patch(f"/v1/texts/{tid}", params=params, json=body), status, code)
    assert [h["id"] for h in _texts(api, collection, "a red circle")] == [text_id]


def _job(api: Api, collection: str, files: list[Any], **data: str) -> dict[str, Any]:
    params = {"collection": collection}
    r = api.client.post("/v1/ingest", params=params, files=files, data=data)
    assert r.status_code == 202, r.text
    url = f"/v1/jobs/{r.json()['job_id']}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # polls the job's state, no fixed wait
        body: dict[str, Any] = api.client.get(url, params={"limit": 100}).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job did not finish: {body}")


def test_ingest_job_updates_stored_pictures(api: Api, collection: str) -> None:
    pngs, caps = pictures(3, seed=27)
    ids = api.stored(pngs[:2], collection=collection)  # no captions, no metadata
    files = [("files", (f"p{i}.png", d, "image/png")) for i, d in enumerate(pngs)]
    csv = f"image_path,caption\np0.png,{caps[0]}\n".encode()
    files.append(("captions_file", ("captions.csv", csv, "text/csv")))
    body = _job(api, collection, files)
    status = {i["source"]: i["status"] for i in body["items"]}
    # p0 gets its caption, p1 brings nothing new, p2 is new.
    assert status == {"p0.png": "updated", "p1.png": "duplicate", "p2.png": "stored"}
    assert (body["status"], body["counts"]["updated"]) == ("done", 1)
    assert _record(api, ids[0], collection)["captions"] == [caps[0]]
    assert _texts(api, collection, caps[0])[0]["image_id"] == ids[0]
    # Job metadata is merged into every stored picture it names.
    body = _job(api, collection, files[:2], metadata='{"batch": "b2"}')
    assert [i["status"] for i in body["items"]] == ["updated", "updated"]
    assert _record(api, ids[1], collection)["metadata"] == {"batch": "b2"}
