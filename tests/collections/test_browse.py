"""Browsing (``GET /v1/images``, ``GET /v1/texts``) and ``DELETE /v1/images?filter=`` on
each backend: every record exactly once in a stable order, typed filters, bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.collections.conftest import Api, pictures

N = 30


def metas(n: int) -> list[dict[str, Any]]:
    # flag alternates between the boolean true and the number 1: Lite conflates them.
    return [{"album": "ab"[i % 2], "flag": True if i % 3 == 0 else 1, "i": i} for i in range(n)]


@pytest.fixture
def filled(api: Api, collection: str) -> list[str]:
    pngs, captions = pictures(N, seed=21)
    return api.stored(pngs, captions, collection=collection, metadata=json.dumps(metas(N)))


def walk(api: Api, path: str, collection: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(200):
        query = {"collection": collection, "limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        r = api.client.get(path, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


def test_pages_through_every_image_once(api: Api, collection: str, filled: list[str]) -> None:
    items = walk(api, "/v1/images", collection, 7)
    ids = [i["id"] for i in items]
    assert ids == sorted(filled)  # each once, stable id order
    first = api.client.get("/v1/images", params={"collection": collection, "limit": 7}).json()
    assert first["total"] == N
    one = api.client.get(f"/v1/images/{ids[0]}", params={"collection": collection}).json()
    assert items[0] == one  # the same record GET /v1/images/{id} shows
    # A page of exactly the rest has no next cursor: no empty page at the end.
    assert (
        api.client.get("/v1/images", params={"collection": collection, "limit": N}).json()[
            "next_cursor"
        ]
        is None
    )


def test_texts_are_browsed_with_their_image(api: Api, collection: str, filled: list[str]) -> None:
    r = api.client.post(
        "/v1/texts", params={"collection": collection}, json={"texts": [{"text": "loose text"}]}
    )
    assert r.status_code == 200, r.text
    items = walk(api, "/v1/texts", collection, 4)
    assert len(items) == N + 1 == len({i["id"] for i in items})
    captions = [i for i in items if i["image_id"]]
    assert {i["image_id"] for i in captions} == set(filled)
    assert all(i["image_url"].startswith(f"/v1/images/{i['image_id']}/file") for i in captions)
    loose = [i for i in items if not i["image_id"]]
    assert [i["text"] for i in loose] == ["loose text"]
    assert loose[0]["image_url"] is None


def test_filters_are_typed(api: Api, collection: str, filled: list[str]) -> None:
    by_id = dict(zip(filled, metas(N), strict=True))

    def ids(flt: dict[str, Any]) -> set[str]:
        items = walk(api, "/v1/images", collection, 4, filter=json.dumps(flt))
        return {i["id"] for i in items}

    assert ids({"album": "a"}) == {k for k, m in by_id.items() if m["album"] == "a"}
    assert ids({"flag": True}) == {k for k, m in by_id.items() if m["flag"] is True}
    assert ids({"flag": 1}) == {k for k, m in by_id.items() if m["flag"] is not True}
    # The operator grammar of search works here too.
    assert ids({"i": {"gte": 10, "lt": 20}, "album": {"ne": "a"}}) == {
        k for k, m in by_id.items() if 10 <= m["i"] < 20 and m["album"] != "a"
    }
    r = api.client.get("/v1/images", params={"collection": collection, "filter": '{"i": 3}'})
    assert r.json()["total"] is None  # not cheap with a filter


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "not-a-cursor!"}, "invalid_cursor"),
        ({"cursor": "eyJ2IjoxfQ"}, "invalid_cursor"),  # {"v":1}: no target, no id
        ({"limit": 0}, "invalid_limit"),
        ({"limit": 100_000}, "invalid_limit"),
        ({"filter": "{not json"}, "invalid_filter"),
        ({"filter": "[1, 2]"}, "invalid_filter"),
        ({"filter": '{"bad key": 1}'}, "invalid_filter"),
        ({"filter": '{"i": {"between": 1}}'}, "invalid_filter"),
    ],
)
def test_bad_browse_input(api: Api, collection: str, params: dict[str, Any], code: str) -> None:
    api.stored(pictures(1)[0], collection=collection)
    r = api.client.get("/v1/images", params={"collection": collection, **params})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


def test_cursor_of_another_endpoint_and_unknown_collection(
    api: Api, collection: str, filled: list[str]
) -> None:
    texts = api.client.get("/v1/texts", params={"collection": collection, "limit": 2}).json()
    r = api.client.get(
        "/v1/images", params={"collection": collection, "cursor": texts["next_cursor"]}
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_cursor"
    r = api.client.get("/v1/images", params={"collection": "never_written_here"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_collection"


def test_delete_by_filter(api: Api, collection: str, filled: list[str]) -> None:
    by_id = dict(zip(filled, metas(N), strict=True))
    gone = {k for k, m in by_id.items() if m["album"] == "a" and m["flag"] is True}
    params = {"collection": collection, "filter": json.dumps({"album": "a", "flag": True})}
    r = api.client.delete("/v1/images", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": len(gone), "texts_deleted": len(gone)}  # one caption each
    left = {i["id"] for i in walk(api, "/v1/images", collection, 50)}
    assert left == set(filled) - gone
    texts = walk(api, "/v1/texts", collection, 50)
    assert {t["image_id"] for t in texts} == left  # their captions went with them
    for image_id in gone:
        r = api.client.get(f"/v1/images/{image_id}/file", params={"collection": collection})
        assert r.status_code == 404
    assert api.client.delete("/v1/images", params=params).json()["deleted"] == 0


@pytest.mark.parametrize("flt", [None, "", "{}"])
def test_delete_by_filter_refuses_an_empty_filter(
    api: Api, collection: str, filled: list[str], flt: str | None
) -> None:
    params: dict[str, Any] = {"collection": collection}
    if flt is not None:
        params["filter"] = flt
    r = api.client.delete("/v1/images", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "filter_required"
    assert api.client.get("/v1/images", params={"collection": collection}).json()["total"] == N


def test_docs_show_the_new_routes_with_examples_and_errors(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    ops = {
        ("/v1/images", "get"): {"404", "422"},
        ("/v1/texts", "get"): {"404", "422"},
        ("/v1/images", "delete"): {"403", "422"},
        ("/v1/collections/{name}/export", "get"): {"404", "422"},
        ("/v1/collections/{name}/import", "post"): {"403", "409", "413", "422"},
    }
    for (path, method), errors in ops.items():
        op = paths[path][method]
        assert op.get("description"), path
        assert errors <= set(op["responses"]), (path, method)
    schemas = spec["components"]["schemas"]
    for name in ("ImagePage", "TextPage", "DeletedByFilter", "ImportedOut"):
        assert schemas[name].get("examples"), name
    body = paths["/v1/collections/{name}/import"]["post"]["requestBody"]
    assert "application/octet-stream" in body["content"]
