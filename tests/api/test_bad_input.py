"""Bad input answers 4xx with the error shape and writes nothing."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from PIL import Image

from tests.api.conftest import Gateway, upload
from tests.helpers import png_bomb

C = "badinput"


def assert_error(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err: dict[str, Any] = r.json()["error"]
    assert set(err) == {"code", "message", "details"}
    assert err["message"]
    if code is not None:
        assert err["code"] == code, err
    return err


@pytest.fixture(scope="module")
def seeded(gateway: Gateway) -> Gateway:
    r = upload(gateway.client, gateway.corpus.pngs[:2], ["first", "second"], collection=C)
    assert r.status_code == 200, r.text
    return gateway


def snapshot(gw: Gateway) -> tuple[Any, int]:
    stats = gw.client.get("/v1/stats").json()
    return stats["collections"][C]["counts"], stats["blobs"]["bytes"]


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "status", "code"),
    [
        ("notes.txt", lambda: b"just some text, not a picture", 422, "invalid_image"),
        ("cut.jpg", lambda: jpeg_bytes()[:3000], 422, "invalid_image"),
        ("bomb.png", lambda: png_bomb(10_000, 10_000), 422, "image_too_large"),
        ("huge.png", lambda: b"\x89PNG" + bytes(3 * 1024 * 1024), 413, "file_too_large"),
        ("empty.png", lambda: b"", 422, "empty_file"),
    ],
)
def test_bad_upload_writes_nothing(
    seeded: Gateway, name: str, make: Any, status: int, code: str
) -> None:
    before = snapshot(seeded)
    r = seeded.client.post(
        "/v1/images",
        params={"collection": C},
        files=[("files", (name, make(), "application/octet-stream"))],
        data={"captions": ["a caption that must not be stored"]},
    )
    err = assert_error(r, status, code)
    assert err["details"][0]["status"] == "failed"
    assert snapshot(seeded) == before


def test_body_over_limit_is_413_and_writes_nothing(seeded: Gateway) -> None:
    before = snapshot(seeded)
    big = bytes(seeded.settings.max_request_bytes + 1)
    r = seeded.client.post(
        "/v1/images", params={"collection": C}, files=[("files", ("big.png", big, "image/png"))]
    )
    assert_error(r, 413, "payload_too_large")
    assert snapshot(seeded) == before


def test_one_bad_file_does_not_cost_the_good_one(seeded: Gateway) -> None:
    before, _ = snapshot(seeded)
    r = seeded.client.post(
        "/v1/images",
        params={"collection": C},
        files=[
            ("files", ("bad.txt", b"nope", "text/plain")),
            ("files", ("good.png", seeded.corpus.pngs[30], "image/png")),
        ],
        data={"captions": ["bad", "good one"]},
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["status"] for i in items] == ["failed", "stored"]
    assert items[0]["error"]["code"] == "invalid_image"
    assert items[0]["id"] == hashlib.sha256(b"nope").hexdigest()  # the id it would have had
    after, _ = snapshot(seeded)
    assert after == {"images": before["images"] + 1, "texts": before["texts"] + 1}


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"captions": ["one", "two"]}, "captions_mismatch"),
        ({"metadata": "{not json"}, "invalid_metadata"),
        ({"metadata": "[1, 2]"}, "invalid_metadata"),
    ],
)
def test_bad_upload_form(seeded: Gateway, form: dict[str, Any], code: str) -> None:
    before = snapshot(seeded)
    r = upload(seeded.client, [seeded.corpus.pngs[40]], collection=C, **form)
    assert_error(r, 422, code)
    assert snapshot(seeded) == before


def test_bad_texts_write_nothing(seeded: Gateway) -> None:
    before = snapshot(seeded)
    long = "x" * (seeded.settings.max_text_chars + 1)
    r = seeded.client.post(
        "/v1/texts", params={"collection": C}, json={"texts": [{"text": "fine"}, {"text": long}]}
    )
    assert_error(r, 422, "text_too_long")
    r = seeded.client.post("/v1/texts", params={"collection": C}, json={"texts": [{"text": "  "}]})
    assert_error(r, 422, "empty_text")
    r = seeded.client.post("/v1/texts", params={"collection": C}, json={"texts": []})
    assert_error(r, 422, "invalid_input")
    assert snapshot(seeded) == before


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/search/text", {"query": ""}, 422, "invalid_input"),
        ("/v1/search/text", {"query": "   "}, 422, "empty_text"),
        ("/v1/search/text", {"query": "x", "top_k": 51}, 422, "top_k_too_large"),
        ("/v1/search/text", {"query": "x", "top_k": 40, "offset": 49961}, 422, "search_too_deep"),
        ("/v1/search/text", {"query": "x", "target": "videos"}, 422, "invalid_input"),
        ("/v1/search/text", {"query": "x", "filter": {"a b": 1}}, 422, "invalid_filter"),
        ("/v1/search/text", {"query": "x", "filter": {"k": {"$gt": 1}}}, 422, "invalid_filter"),
        ("/v1/search/image", {"image_base64": "!!!notbase64"}, 422, "invalid_base64"),
        ("/v1/search/image", {"image_id": "a", "image_base64": "AAAA"}, 422, "invalid_input"),
        ("/v1/search/image", {"image_id": "0" * 64}, 404, "image_not_found"),
        ("/v1/search/image", {"image_base64": "aGVsbG8="}, 422, "invalid_image"),
        ("/v1/search/batch", {"queries": [{"text": "a"}] * 17}, 422, "too_many_queries"),
        ("/v1/search/batch", {"queries": [{"text": "a", "image_id": "b"}]}, 422, "invalid_input"),
        ("/v1/search/batch", {"queries": []}, 422, "invalid_input"),
    ],
)
def test_bad_search(gateway: Gateway, path: str, body: Any, status: int, code: str) -> None:
    assert_error(gateway.client.post(path, json=body), status, code)


def test_unknown_and_invalid_collection(gateway: Gateway) -> None:
    q = {"query": "a red circle"}
    err = assert_error(
        gateway.client.post("/v1/search/text", params={"collection": "nosuch"}, json=q),
        404,
        "unknown_collection",
    )
    assert "nosuch" in err["message"]
    image_id = gateway.corpus.ids[0]
    for path in (f"/v1/images/{image_id}", f"/v1/images/{image_id}/file"):
        assert_error(gateway.client.get(path, params={"collection": "nosuch"}), 404)
    assert_error(
        gateway.client.post("/v1/search/text", params={"collection": "bad name"}, json=q), 422
    )
    assert "nosuch" not in gateway.stats()["collections"]  # reads never create


def test_search_image_needs_json_or_multipart(gateway: Gateway) -> None:
    r = gateway.client.post(
        "/v1/search/image", content=b"raw", headers={"content-type": "image/png"}
    )
    assert_error(r, 422, "invalid_body")
    r = gateway.client.post("/v1/search/image", files={"other": ("a", b"x")})
    assert_error(r, 422, "missing_file")


def test_limits_are_checked_once_in_the_use_case(gateway: Gateway) -> None:
    # The routes no longer check these limits themselves: the use-case's refusal (with the
    # limit in details) is what the client sees.
    limit = gateway.settings.max_files_per_request
    files = [("files", (f"{i}.png", b"x", "image/png")) for i in range(limit + 1)]
    err = assert_error(
        gateway.client.post("/v1/images", params={"collection": "limits"}, files=files),
        422,
        "too_many_files",
    )
    assert err["details"] == {"max_files_per_request": limit}
    queries = [{"text": "a"}] * (gateway.settings.max_batch_queries + 1)
    err = assert_error(gateway.client.post("/v1/search/batch", json={"queries": queries}), 422)
    assert err["details"] == {"max_batch_queries": gateway.settings.max_batch_queries}
    # image_base64 is decoded by the use-case after the count check, once per query.
    big = "A" * (gateway.settings.max_upload_bytes * 2)
    assert_error(
        gateway.client.post("/v1/search/batch", json={"queries": [{"image_base64": big}]}),
        413,
        "file_too_large",
    )
