"""API keys through the real app (tiny shapes model, Milvus Lite, SQLite jobs): scopes per
route, 401 vs 403, both headers, collections only by an admin, per-key job visibility and
redaction, keys never logged, the rate limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.core.keys import Scope, make_entry, new_key
from clipsearch.jobs.entry import stub
from clipsearch.jobs.store import Item, ItemKind
from tests.helpers import SHAPES_MODEL, noise


@dataclass
class Keyed:
    client: TestClient
    keys: dict[str, str]  # role -> key
    photos: Path

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


ROLES = {
    "read": (Scope.read, "alice"),
    "write": (Scope.write, "alice"),  # same name as the read key: the same person
    "other": (Scope.write, "bob"),
    "admin": (Scope.admin, "root"),
}


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    root = tmp_path_factory.mktemp("keyed")
    photos = root / "photos"
    photos.mkdir()
    (photos / "secret-plan.png").write_bytes(noise(5))
    keys = {role: new_key() for role in ROLES}
    entries = [make_entry(keys[r], scope, name).line() for r, (scope, name) in ROLES.items()]
    # Half inline, half in a file: both sources count.
    keys_file = root / "keys.txt"
    keys_file.write_text("\n".join(entries[2:]) + "\n")
    settings = Settings(
        _env_file=None,
        data_dir=root / "data",
        model_path=SHAPES_MODEL,
        index_type="FLAT",
        api_keys=",".join(entries[:2]),
        api_keys_file=keys_file,
        ingest_roots=[photos],
        auto_create_collections=False,  # the product default (the test env turns it on)
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Keyed(client, keys, photos)


def _error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return body


def _png(seed: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"p{seed}.png", noise(seed), "image/png"))]


def test_no_key_is_401_with_www_authenticate(keyed: Keyed) -> None:
    c = keyed.client
    for method, path in [("GET", "/v1/stats"), ("POST", "/v1/search/text"), ("GET", "/v1/jobs")]:
        r = c.request(method, path, json={"query": "a red circle"})
        _error(r, 401, "missing_api_key")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = c.get("/v1/stats", headers={"Authorization": "Bearer cs_not-a-key"})
    _error(r, 401, "invalid_api_key")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # Another scheme, or the key in the query string (it would end up in access logs), is
    # no key at all.
    _error(c.get("/v1/stats", headers={"Authorization": f"Basic {keyed.keys['admin']}"}), 401,
           "missing_api_key")  # fmt: skip
    _error(c.get("/v1/stats", params={"api_key": keyed.keys["admin"]}), 401, "missing_api_key")


def test_patches_need_a_write_key(keyed: Keyed) -> None:
    c = keyed.client
    for path in (f"/v1/images/{'0' * 64}", f"/v1/texts/{'0' * 64}"):
        _error(c.patch(path, json={"metadata": {"a": 1}}), 401, "missing_api_key")
        _error(c.patch(path, json={"metadata": {"a": 1}}, headers=keyed.as_("read")), 403,
               "insufficient_scope")  # fmt: skip
    # A write key gets through to the use-case: an unknown id is a 404, not a refusal.
    r = c.patch(f"/v1/texts/{'0' * 64}", json={"metadata": {"a": 1}}, headers=keyed.as_("write"))
    _error(r, 404, "text_not_found")


def test_probes_and_page_stay_open(keyed: Keyed) -> None:
    c = keyed.client
    assert c.get("/healthz").status_code == 200
    assert c.get("/readyz").status_code == 200
    assert c.get("/").status_code == 200
    assert c.get("/web/app.js").status_code == 200
    assert c.get("/docs").status_code == 200  # docs_open defaults to true
    spec = c.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    assert spec["security"] == [{"bearer": []}, {"apiKey": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    _error(c.get("/metrics"), 401, "missing_api_key")  # metrics_open defaults to false
    assert c.get("/metrics", headers=keyed.as_("read")).status_code == 200


def test_store_uri_is_for_admins(keyed: Keyed) -> None:
    c = keyed.client
    assert c.get("/v1/stats", headers=keyed.as_("read")).json()["store"]["uri"] is None
    assert (
        c.get("/v1/stats", headers=keyed.as_("admin"))
        .json()["store"]["uri"]
        .endswith("store.sqlite3")
    )


def test_bearer_and_x_api_key_both_work(keyed: Keyed) -> None:
    c = keyed.client
    assert c.get("/v1/stats", headers=keyed.as_("read")).status_code == 200
    assert c.get("/v1/stats", headers={"X-API-Key": keyed.keys["read"]}).status_code == 200
    assert c.get("/v1/stats", headers={"authorization": f"bearer {keyed.keys['read']}"}).is_success


def test_read_key_searches_but_cannot_write(keyed: Keyed) -> None:
    c, read = keyed.client, keyed.as_("read")
    r = c.post("/v1/search/text", json={"query": "a red circle"}, headers=read)
    assert r.status_code == 200, r.text
    body = _error(c.post("/v1/images", files=_png(1), headers=read), 403, "insufficient_scope")
    assert body["error"]["details"] == {"required": "write", "scope": "read"}
    _error(c.post("/v1/texts", json={"texts": [{"text": "x"}]}, headers=read), 403,
           "insufficient_scope")  # fmt: skip
    _error(c.delete(f"/v1/images/{'0' * 64}", headers=read), 403, "insufficient_scope")
    _error(c.delete(f"/v1/texts/{'0' * 64}", headers=read), 403, "insufficient_scope")
    _error(c.post("/v1/ingest", json={"urls": ["http://example.com/a.png"]}, headers=read), 403,
           "insufficient_scope")  # fmt: skip
    _error(c.delete(f"/v1/jobs/{'0' * 32}", headers=read), 403, "insufficient_scope")


def test_write_key_writes_the_default_collection_but_cannot_create_one(keyed: Keyed) -> None:
    c, write = keyed.client, keyed.as_("write")
    r = c.post("/v1/images", files=_png(2), headers=write)
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["status"] == "stored"
    r = c.post("/v1/texts", params={"collection": "fresh"}, json={"texts": [{"text": "a"}]},
               headers=write)  # fmt: skip
    body = _error(r, 404, "unknown_collection")
    assert "PUT /v1/collections/fresh" in body["error"]["message"]
    assert "CLIPSEARCH_AUTO_CREATE_COLLECTIONS=true" in body["error"]["message"]
    _error(c.post("/v1/images", params={"collection": "fresh"}, files=_png(3), headers=write),
           404, "unknown_collection")  # fmt: skip
    r = c.post("/v1/ingest", json={"urls": ["http://example.com/a.png"], "collection": "fresh"},
               headers=write)  # fmt: skip
    _error(r, 404, "unknown_collection")
    _error(c.put("/v1/collections/fresh", headers=write), 403, "insufficient_scope")
    stats = c.get("/v1/stats", headers=write).json()
    assert "fresh" not in stats["collections"]


def test_admin_creates_collections_then_writers_may_use_them(keyed: Keyed) -> None:
    c = keyed.client
    # A write creates nothing, not even an admin's: collections are made with PUT.
    r = c.post("/v1/texts", params={"collection": "team"}, json={"texts": [{"text": "a"}]},
               headers=keyed.as_("admin"))  # fmt: skip
    _error(r, 404, "unknown_collection")
    assert c.put("/v1/collections/team", headers=keyed.as_("admin")).status_code == 201
    r = c.post("/v1/texts", params={"collection": "team"}, json={"texts": [{"text": "a"}]},
               headers=keyed.as_("admin"))  # fmt: skip
    assert r.status_code == 200, r.text
    r = c.post("/v1/texts", params={"collection": "team"}, json={"texts": [{"text": "b"}]},
               headers=keyed.as_("write"))  # fmt: skip
    assert r.status_code == 200, r.text
    assert (
        c.get("/v1/stats", headers=keyed.as_("read")).json()["collections"]["team"]["counts"][
            "texts"
        ]
        == 2
    )


def test_the_auto_threshold_is_set_by_an_admin_only(keyed: Keyed) -> None:
    c = keyed.client
    assert c.put("/v1/collections/thr", headers=keyed.as_("admin")).status_code in (200, 201)
    url = "/v1/collections/thr/threshold"
    _error(c.put(url, json={"min_score": 0.3}), 401, "missing_api_key")
    _error(c.put(url, json={"min_score": 0.3}, headers=keyed.as_("write")), 403,
           "insufficient_scope")  # fmt: skip
    r = c.put(url, json={"min_score": 0.3}, headers=keyed.as_("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["min_score_auto"] == 0.3


def test_anonymous_writes_cannot_create_collections(tmp_path: Path) -> None:
    """No keys on loopback (`make run`): the issue's repro, 30 anonymous writes to 30 new
    collections, creates none; the default collection still takes writes."""
    settings = Settings(
        _env_file=None, data_dir=tmp_path, model_path=SHAPES_MODEL, auto_create_collections=False
    )
    with TestClient(create_app(settings)) as c:
        for i in range(30):
            r = c.post("/v1/texts", params={"collection": f"x{i}"}, json={"texts": [{"text": "a"}]})
            _error(r, 404, "unknown_collection")
        assert list(c.get("/v1/stats").json()["collections"]) == ["default"]
        assert c.post("/v1/texts", json={"texts": [{"text": "a"}]}).status_code == 200
    opened = settings.model_copy(update={"auto_create_collections": True})
    with TestClient(create_app(opened)) as c:
        r = c.post("/v1/texts", params={"collection": "x0"}, json={"texts": [{"text": "a"}]})
        assert r.status_code == 200, r.text


def _wait(c: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = c.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.1)
    raise AssertionError(body)


def test_jobs_are_seen_by_their_key_name_and_items_are_redacted(keyed: Keyed) -> None:
    c = keyed.client
    secret_url = "http://user:pa55w0rd@127.0.0.1:9/a.png"
    body = {"urls": [secret_url], "paths": ["secret-plan.png"]}
    r = c.post("/v1/ingest", json=body, headers=keyed.as_("write"))
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = _wait(c, job_id, keyed.as_("write"))
    sources = {i["source"] for i in job["items"]}
    # No credentials, for anyone; the server path only as a file name, to a non-admin.
    assert "pa55w0rd" not in r.text + str(job)
    assert "http://***@127.0.0.1:9/a.png" in sources
    assert "secret-plan.png" in sources
    assert str(keyed.photos) not in str(job)
    admin_view = c.get(f"/v1/jobs/{job_id}", headers=keyed.as_("admin")).json()
    assert str(keyed.photos / "secret-plan.png") in {i["source"] for i in admin_view["items"]}
    assert "pa55w0rd" not in str(admin_view)
    # The stored record (what every reader's hits show) keeps the file name only.
    (stored,) = [i for i in admin_view["items"] if i["status"] == "stored"]
    record = c.get(f"/v1/images/{stored['id']}", headers=keyed.as_("read")).json()
    assert record["source"] == "secret-plan.png"

    # alice's read key sees alice's job; bob's write key does not (a 404, like no job).
    assert c.get(f"/v1/jobs/{job_id}", headers=keyed.as_("read")).status_code == 200
    listed = c.get("/v1/jobs", headers=keyed.as_("read")).json()["jobs"]
    assert job_id in {j["job_id"] for j in listed}
    _error(c.get(f"/v1/jobs/{job_id}", headers=keyed.as_("other")), 404, "job_not_found")
    _error(c.delete(f"/v1/jobs/{job_id}", headers=keyed.as_("other")), 404, "job_not_found")
    _error(c.get(f"/v1/jobs/{job_id}/events", headers=keyed.as_("other")), 404, "job_not_found")
    assert job_id not in {
        j["job_id"] for j in c.get("/v1/jobs", headers=keyed.as_("other")).json()["jobs"]
    }
    assert job_id in {
        j["job_id"] for j in c.get("/v1/jobs", headers=keyed.as_("admin")).json()["jobs"]
    }


def test_stored_records_keep_no_credentials_nor_paths() -> None:
    def source(where: str, kind: ItemKind) -> str:
        item = Item("j", 0, where, kind, None, [], {}, "pending", None, False, None)
        return stub(item).public_source()

    assert source("https://u:pw@img.example/a.png", "url") == "https://***@img.example/a.png"
    assert source("https://img.example/a.png", "url") == "https://img.example/a.png"
    assert source("/srv/photos/2024/a.png", "path") == "a.png"
    assert source("a.png", "upload") == "a.png"


def test_idempotency_key_of_another_key_is_refused(keyed: Keyed) -> None:
    c = keyed.client
    body = {"urls": ["http://127.0.0.1:9/b.png"]}
    headers = {**keyed.as_("write"), "Idempotency-Key": "alice-1"}
    assert c.post("/v1/ingest", json=body, headers=headers).status_code == 202
    assert c.post("/v1/ingest", json=body, headers=headers).status_code == 200
    r = c.post(
        "/v1/ingest", json=body, headers={**keyed.as_("other"), "Idempotency-Key": "alice-1"}
    )
    _error(r, 403, "idempotency_conflict")


def test_keys_are_never_logged(keyed: Keyed, caplog: pytest.LogCaptureFixture) -> None:
    c = keyed.client
    wrong = new_key()
    with caplog.at_level(logging.DEBUG):
        c.get("/v1/stats", headers=keyed.as_("read"))
        c.get("/v1/stats", headers={"X-API-Key": wrong})
        c.post("/v1/images", files=_png(4), headers=keyed.as_("read"))
        r = c.get("/v1/stats", headers={"Authorization": f"Bearer {wrong}"})
    assert caplog.records  # the app did log something at debug level
    for key in [*keyed.keys.values(), wrong]:
        assert key not in caplog.text
        assert key not in r.text


def test_rate_limit_per_key_and_per_address(tmp_path: Path) -> None:
    key = new_key()
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        model_path=SHAPES_MODEL,
        api_keys=[make_entry(key, Scope.read, "k").line()],
        rate_limit_per_s=0.5,
        rate_limit_burst=2,
    )
    # The lifespan is not needed: /v1/nothing is a 404 once the key check has passed.
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    auth = {"X-API-Key": key}
    assert [client.get("/v1/nothing", headers=auth).status_code for _ in range(2)] == [404, 404]
    r = client.get("/v1/nothing", headers=auth)
    _error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 2
    # Unverified keys are charged to the client address before the slow hash check; the
    # good key's first (uncached) check took one of this address's two tokens already.
    statuses = [client.get("/v1/x", headers={"X-API-Key": f"cs_{i}"}).status_code for i in range(3)]
    assert statuses == [401, 429, 429]
    assert client.get("/healthz").status_code == 200  # probes are never limited
