"""No stored record may break a read: metadata is bounded when written, and a record stored
before the bounds (planted here straight in the store, past the API) is still returned by
get, search and batch, with its metadata left out and ``metadata_omitted`` saying why."""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
import pytest

from clipsearch.api.state import AppState
from clipsearch.store.protocol import ImageRecord, TextRecord
from tests.api.conftest import Gateway, upload
from tests.api.test_bad_input import assert_error

C = "planted"


def nested(levels: int) -> dict[str, Any]:
    """``{"a": {"a": ... {}}}`` with ``levels`` objects."""
    out: dict[str, Any] = {}
    for _ in range(levels - 1):
        out = {"a": out}
    return out


def state_of(gw: Gateway) -> AppState:
    return cast(AppState, gw.client.app.state.clipsearch)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("metadata", "detail"),
    [
        (nested(300), "max_metadata_depth"),
        (nested(9), "max_metadata_depth"),
        ({f"k{i}": i for i in range(257)}, "max_metadata_keys"),
        ({"blob": "x" * 17000}, "max_metadata_bytes"),
    ],
    ids=["300-deep", "9-deep", "257-keys", "17kB"],
)
def test_metadata_over_the_bounds_is_refused_everywhere(
    gateway: Gateway, metadata: dict[str, Any], detail: str
) -> None:
    client = gateway.client
    r = upload(client, [gateway.corpus.pngs[5]], collection="bounds", metadata=json.dumps(metadata))
    err = assert_error(r, 422, "invalid_metadata")
    assert err["details"][0]["error"]["code"] == "invalid_metadata"  # the one item's error
    r = client.post(
        "/v1/texts",
        params={"collection": "bounds"},
        json={"texts": [{"text": "a red circle", "metadata": metadata}]},
    )
    err = assert_error(r, 422, "invalid_metadata")
    assert detail in err["details"]
    r = client.post("/v1/ingest", json={"urls": ["http://127.0.0.1:9/a.png"], "metadata": metadata})
    err = assert_error(r, 422, "invalid_metadata")
    assert detail in err["details"]
    r = client.post("/v1/ingest", json={"urls": [{"url": "http://x/a.png", "metadata": metadata}]})
    assert_error(r, 422, "invalid_metadata")
    assert gateway.stats("bounds")["counts"] == {"images": 0, "texts": 0}  # nothing written


def test_metadata_within_the_bounds_is_stored(gateway: Gateway) -> None:
    meta = {**nested(8), "k": list(range(10))}
    r = upload(
        gateway.client, [gateway.corpus.pngs[6]], collection="bounds_ok", metadata=json.dumps(meta)
    )
    assert r.status_code == 200, r.text
    image_id = r.json()["items"][0]["id"]
    got = gateway.client.get(f"/v1/images/{image_id}", params={"collection": "bounds_ok"}).json()
    assert got["metadata"] == meta
    assert got["metadata_omitted"] is None


@pytest.fixture(scope="module")
def planted(gateway: Gateway) -> tuple[Gateway, str]:
    """A collection with one good picture, plus an image and a text record whose metadata
    is 300 objects deep, written straight to the store (as an old gateway could have)."""
    r = upload(gateway.client, [gateway.corpus.pngs[0]], ["a red circle"], collection=C)
    assert r.status_code == 200, r.text
    good = r.json()["items"][0]["id"]
    state = state_of(gateway)
    group = C  # the API's collection name is the store's group name
    vector = state.store.get(group, "images", [good], with_vectors=True)[0]["vector"]
    bad_id = "f" * 64
    deep = nested(300)
    state.store.upsert_images(
        group,
        [ImageRecord(id=bad_id, vector=np.asarray(vector), source="old.png", metadata=deep)],
    )
    state.store.upsert_texts(
        group,
        [TextRecord(id="e" * 64, vector=np.asarray(vector), text="a red circle", metadata=deep)],
    )
    return gateway, bad_id


def _check_hits(hits: list[dict[str, Any]], bad_id: str) -> None:
    assert hits, "the planted records must be among the hits"
    for h in hits:
        if h["id"] in (bad_id, "e" * 64):
            assert h["metadata"] == {}
            assert "deeper than" in h["metadata_omitted"]
        else:
            assert h["metadata_omitted"] is None


def test_planted_record_reads_safely(planted: tuple[Gateway, str]) -> None:
    gw, bad_id = planted
    client, params = gw.client, {"collection": C}
    r = client.get(f"/v1/images/{bad_id}", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {}
    assert "deeper than 64" in r.json()["metadata_omitted"]

    for target in ("images", "texts"):
        body = {"query": "a red circle", "target": target, "top_k": 5}
        r = client.post("/v1/search/text", params=params, json=body)
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert bad_id in {h["id"] for h in hits} or "e" * 64 in {h["id"] for h in hits}
        _check_hits(hits, bad_id)

        r = client.post("/v1/search/image", params=params, json={"image_id": bad_id, **body})
        assert r.status_code == 200, r.text
        _check_hits(r.json()["hits"], bad_id)

    batch = {"queries": [{"text": "a red circle"}, {"image_id": bad_id}], "top_k": 5}
    r = client.post("/v1/search/batch", params=params, json=batch)
    assert r.status_code == 200, r.text
    for result in r.json()["results"]:
        _check_hits(result["hits"], bad_id)
