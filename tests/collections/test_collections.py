"""Collections on each backend: list/get/create (idempotent, 409 on another spec)/drop,
the auto-create contract, per-collection index specs, and models per collection (a
gateway whose main model changed still serves collections of a configured older model,
and says clearly which ones it cannot serve)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clipsearch.core.config import Settings
from clipsearch.core.keys import Scope, make_entry, new_key
from tests.collections.conftest import (
    BACKENDS,
    Api,
    backend_uri,
    gateway,
    pictures,
    suite_settings,
)
from tests.helpers import SHAPES_MODEL

MODEL_B = "shapes-tiny-v2"
SAME_MODEL = 0.99998  # a text's score against itself; across the two models ~0.9997


def _error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == code, body
    return body


# --- the suite's gateway (auto-create on, no keys) ----------------------------------------
def test_put_creates_then_is_idempotent_and_409_on_another_spec(api: Api, collection: str) -> None:
    c = api.client
    r = c.put(f"/v1/collections/{collection}")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == collection
    assert body["model_name"] == "shapes-tiny"
    assert body["dim"] == 128
    assert body["servable"] is True
    assert body["reason"] is None
    assert body["counts"] == {"images": 0, "texts": 0}
    assert body["created_at"] > 0
    assert c.put(f"/v1/collections/{collection}").status_code == 200
    same = {"index": {"type": body["index_type"], "params": {}}}
    assert c.put(f"/v1/collections/{collection}", json=same).status_code == 200
    other = "FLAT" if body["index_type"] == "HNSW" else "HNSW"
    r = c.put(f"/v1/collections/{collection}", json={"index": {"type": other}})
    conflict = _error(r, 409, "collection_spec_mismatch")
    assert "index.type" in conflict["error"]["details"]
    listed = {x["name"]: x for x in c.get("/v1/collections").json()["collections"]}
    assert listed[collection]["fingerprint"] == body["fingerprint"]
    got = c.get(f"/v1/collections/{collection}").json()
    assert got["index_type"] == body["index_type"]
    assert got["counts"] == body["counts"]


def test_index_spec_per_collection(api: Api, collection: str) -> None:
    c = api.client
    spec = {"index": {"type": "HNSW", "params": {"M": 8, "efConstruction": 64}}}
    r = c.put(f"/v1/collections/{collection}", json=spec)
    assert r.status_code == 201, r.text
    assert r.json()["index_type"] == "HNSW"
    assert r.json()["index_params"]["M"] == 8
    assert r.json()["index_params"]["efConstruction"] == 64
    assert c.put(f"/v1/collections/{collection}", json=spec).status_code == 200
    r = c.put(f"/v1/collections/{collection}", json={"index": {"params": {"M": 16}}})
    assert _error(r, 409, "collection_spec_mismatch")["error"]["details"]["index.params.M"] == {
        "existing": 8,
        "requested": 16,
    }
    flat = f"{collection}_f"
    r = c.put(f"/v1/collections/{flat}", json={"index": {"type": "FLAT"}})
    assert r.status_code == 201
    assert r.json()["index_type"] == "FLAT"
    pngs, captions = pictures(3, seed=3)
    for name in (collection, flat):  # both index kinds store and find
        api.stored(pngs, captions, collection=name)
        r = c.post("/v1/search/text", params={"collection": name}, json={"query": captions[0]})
        assert r.status_code == 200, r.text
        assert r.json()["hits"]
        assert c.get(f"/v1/collections/{name}").json()["counts"] == {"images": 3, "texts": 3}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"index": {"type": "IVF"}}, "invalid_input"),
        ({"index": {"type": "HNSW", "params": {"M": 1000}}}, "invalid_index"),
        ({"index": {"type": "HNSW", "params": {"M": 2}}}, "invalid_index"),
        ({"index": {"type": "HNSW", "params": {"nlist": 8}}}, "invalid_index"),
        ({"index": {"type": "FLAT", "params": {"M": 8}}}, "invalid_index"),
        ({"index": {"type": "HNSW", "params": {"M": "8"}}}, "invalid_input"),
        ({"index": {"type": "HNSW", "params": {"M": True}}}, "invalid_input"),
        ({"colour": "red"}, "invalid_input"),
        ({"model": ""}, "invalid_input"),
    ],
)
def test_put_refuses_bad_specs(api: Api, collection: str, body: Any, code: str) -> None:
    _error(api.client.put(f"/v1/collections/{collection}", json=body), 422, code)
    _error(api.client.get(f"/v1/collections/{collection}"), 404, "unknown_collection")


def test_bad_names_unknown_collections_and_unknown_models(api: Api, collection: str) -> None:
    c = api.client
    for method in ("get", "put", "delete"):
        r = getattr(c, method)("/v1/collections/bad-name!")
        assert r.status_code == 422, (method, r.text)
        r = getattr(c, method)(f"/v1/collections/{'x' * 65}")
        assert r.status_code == 422, (method, r.text)
    body = _error(c.get(f"/v1/collections/{collection}"), 404, "unknown_collection")
    assert f"PUT /v1/collections/{collection}" in body["error"]["message"]
    _error(c.delete(f"/v1/collections/{collection}"), 404, "unknown_collection")
    r = c.put(f"/v1/collections/{collection}", json={"model": "no-such-model"})
    assert "no-such-model" in _error(r, 409, "model_not_configured")["error"]["message"]
    r = c.put(f"/v1/collections/{collection}", content=b"{not json", headers={
        "content-type": "application/json"})  # fmt: skip
    assert r.status_code == 422, r.text
    _error(c.get(f"/v1/collections/{collection}"), 404, "unknown_collection")


def test_delete_drops_vectors_records_and_unshared_blobs(api: Api, collection: str) -> None:
    c = api.client
    blobs = c.app.state.clipsearch.blobs  # type: ignore[attr-defined]
    keep = f"{collection}_k"
    pngs, captions = pictures(3, seed=21)
    ids = api.stored(pngs, captions, collection=collection)
    shared = api.stored(pngs[:1], captions[:1], collection=keep)[0]
    r = c.delete(f"/v1/collections/{collection}")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": collection, "deleted": True, "images": 3, "blobs_removed": 2,
                        "jobs_cancelled": 0}  # fmt: skip
    _error(c.get(f"/v1/collections/{collection}"), 404, "unknown_collection")
    r = c.post("/v1/search/text", params={"collection": collection}, json={"query": "a"})
    _error(r, 404, "unknown_collection")
    assert collection not in c.get("/v1/stats").json()["collections"]
    assert blobs.exists(shared)
    assert not any(blobs.exists(i) for i in ids if i != shared)
    r = c.get(f"/v1/images/{shared}/file", params={"collection": keep})
    assert r.status_code == 200
    assert r.content == pngs[0]
    # The name is free again, and a new collection under it starts empty.
    assert c.put(f"/v1/collections/{collection}").status_code == 201
    assert c.get(f"/v1/collections/{collection}").json()["counts"] == {"images": 0, "texts": 0}
    _error(c.delete(f"/v1/collections/{collection}_none"), 404, "unknown_collection")


# --- a keyed gateway with the product default (no auto-create) and a second model ---------
ROLES = {"read": Scope.read, "write": Scope.write, "admin": Scope.admin}


@dataclass
class Strict:
    api: Api
    keys: dict[str, str]

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture(
    scope="module",
    params=BACKENDS,
)
def strict(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, model_b: Path
) -> Iterator[Strict]:
    backend = str(request.param)
    tmp = tmp_path_factory.mktemp(f"strict-{backend}")
    keys = {role: new_key() for role in ROLES}
    entries = [make_entry(keys[r], scope, r).line() for r, scope in ROLES.items()]
    settings = suite_settings(
        backend,
        tmp,
        backend_uri(request, backend, tmp),
        api_keys=entries,
        auto_create_collections=False,
        extra_models=[str(model_b)],
    )
    with gateway(settings, backend) as api:
        yield Strict(api, keys)


def test_scopes_of_the_collection_routes(strict: Strict) -> None:
    c, name = strict.api.client, f"s_{uuid.uuid4().hex[:8]}"
    _error(c.get("/v1/collections"), 401, "missing_api_key")
    _error(c.put(f"/v1/collections/{name}"), 401, "missing_api_key")
    _error(c.delete(f"/v1/collections/{name}"), 401, "missing_api_key")
    for role in ("read", "write"):
        _error(c.put(f"/v1/collections/{name}", headers=strict.as_(role)), 403,
               "insufficient_scope")  # fmt: skip
        _error(c.delete("/v1/collections/default", headers=strict.as_(role)), 403,
               "insufficient_scope")  # fmt: skip
    assert c.get("/v1/collections", headers=strict.as_("read")).status_code == 200
    assert c.put(f"/v1/collections/{name}", headers=strict.as_("admin")).status_code == 201
    r = c.get(f"/v1/collections/{name}", headers=strict.as_("read"))
    assert r.status_code == 200
    assert r.json()["name"] == name
    assert c.delete(f"/v1/collections/{name}", headers=strict.as_("admin")).status_code == 200


def test_writes_create_only_the_default_collection(strict: Strict) -> None:
    c, write, name = strict.api.client, strict.as_("write"), f"w_{uuid.uuid4().hex[:8]}"
    pngs, _ = pictures(1, seed=31)
    r = c.post("/v1/texts", params={"collection": name}, json={"texts": [{"text": "a"}]},
               headers=write)  # fmt: skip
    body = _error(r, 404, "unknown_collection")
    assert f"PUT /v1/collections/{name}" in body["error"]["message"]
    assert "CLIPSEARCH_AUTO_CREATE_COLLECTIONS=true" in body["error"]["message"]
    files = [("files", ("a.png", pngs[0], "image/png"))]
    _error(c.post("/v1/images", params={"collection": name}, files=files, headers=write), 404,
           "unknown_collection")  # fmt: skip
    r = c.post("/v1/ingest", json={"urls": ["http://example.com/a.png"], "collection": name},
               headers=write)  # fmt: skip
    _error(r, 404, "unknown_collection")
    names = [x["name"] for x in c.get("/v1/collections", headers=write).json()["collections"]]
    assert name not in names
    assert "default" in names
    r = c.post("/v1/texts", json={"texts": [{"text": "into the default"}]}, headers=write)
    assert r.status_code == 200, r.text


def test_a_collection_of_the_second_model_is_encoded_by_it(strict: Strict) -> None:
    c, admin, name = strict.api.client, strict.as_("admin"), f"m_{uuid.uuid4().hex[:8]}"
    r = c.put(f"/v1/collections/{name}", json={"model": MODEL_B}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["model_name"] == MODEL_B
    assert r.json()["servable"] is True
    main = c.get("/v1/stats", headers=admin).json()["encoder"]["fingerprint"]
    assert r.json()["fingerprint"] != main
    # Same model again: idempotent; the main model (no "model") differs: 409.
    assert (
        c.put(f"/v1/collections/{name}", json={"model": MODEL_B}, headers=admin).status_code == 200
    )
    _error(c.put(f"/v1/collections/{name}", headers=admin), 409, "collection_spec_mismatch")
    text = "a small red circle"
    r = c.post("/v1/texts", params={"collection": name}, json={"texts": [{"text": text}]},
               headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    r = c.post("/v1/search/text", params={"collection": name},
               json={"query": text, "target": "texts"}, headers=admin)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["hits"][0]["score"] > SAME_MODEL  # encoded by model B both times


# --- switching the main model --------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_switching_the_main_model_keeps_configured_models_collections(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    model_b: Path,
    backend: str,
) -> None:
    """Model A (shapes) builds collection ``old``; a gateway whose main model is B (shapes-tiny-v2)
    still serves it, encoded by A, when A is an extra model; without A it starts anyway,
    answers ``old`` with 409 naming A, serves B's collections and lists ``old`` as not
    servable."""
    tmp = tmp_path_factory.mktemp(f"switch-{backend}")
    base = suite_settings(backend, tmp, backend_uri(request, backend, tmp))
    text = "two green triangles"
    with gateway(base, backend) as a:
        r = a.client.post(
            "/v1/texts", params={"collection": "old"}, json={"texts": [{"text": text}]}
        )
        assert r.status_code == 200, r.text
    b_main: dict[str, Any] = {"model_path": model_b, "default_collection": "newer"}

    def search(api: Api, collection: str) -> Any:
        body = {"query": text, "target": "texts"}
        return api.client.post("/v1/search/text", params={"collection": collection}, json=body)

    with gateway(base.model_copy(update={**b_main, "extra_models": [str(SHAPES_MODEL)]}),
                 backend) as b:  # fmt: skip
        r = search(b, "old")
        assert r.status_code == 200, r.text
        assert r.json()["hits"][0]["score"] > SAME_MODEL  # encoded by A, as stored
        assert b.client.get("/v1/collections/old").json()["servable"] is True
        r = b.client.post("/v1/texts", params={"collection": "newer"},
                          json={"texts": [{"text": text}]})  # fmt: skip
        assert r.status_code == 200, r.text
    with gateway(base.model_copy(update=b_main), backend) as b_only:
        body = _error(search(b_only, "old"), 409, "model_not_configured")
        assert "'shapes-tiny'" in body["error"]["message"]
        assert "CLIPSEARCH_EXTRA_MODELS" in body["error"]["message"]
        r = search(b_only, "newer")
        assert r.status_code == 200
        assert r.json()["hits"][0]["score"] > SAME_MODEL
        listed = {x["name"]: x for x in b_only.client.get("/v1/collections").json()["collections"]}
        assert listed["old"]["servable"] is False
        assert "shapes-tiny" in listed["old"]["reason"]
        assert listed["newer"]["servable"] is True
        stats = b_only.client.get("/v1/stats").json()["collections"]
        assert stats["old"]["servable"] is False
        assert stats["newer"]["servable"] is True
        r = b_only.client.post(
            "/v1/texts", params={"collection": "old"}, json={"texts": [{"text": "x"}]}
        )
        _error(r, 409, "model_not_configured")


def test_settings_parse_extra_models() -> None:
    s = Settings(_env_file=None, extra_models=" a=/m/a , /m/b ,")
    assert s.extra_models == ["a=/m/a", "/m/b"]
