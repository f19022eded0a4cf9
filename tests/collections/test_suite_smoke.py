"""The suite's own fixture works on each backend: a write and a read through it."""

from __future__ import annotations

from tests.collections.conftest import Api, pictures


def test_upload_then_search_finds_it(api: Api, collection: str) -> None:
    pngs, captions = pictures(4)
    ids = api.stored(pngs, captions, collection=collection)
    assert len(set(ids)) == 4
    body = {"query": captions[0], "top_k": 4}
    r = api.client.post("/v1/search/text", params={"collection": collection}, json=body)
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits
    assert {h["id"] for h in hits} <= set(ids)
