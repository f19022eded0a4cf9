"""Export / import over the fakes: the CLI commands through the typed client against a real
gateway on loopback, the body limit of an import, the admin scope it needs, and the undo of
an import whose write fails half-way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.helpers import noise
from tests.unit.usecase_fakes import FakeBlobs, FakeEncoder, FakeStore

from clipsearch.api.app import create_app
from clipsearch.cli import main
from clipsearch.client import Client
from clipsearch.core.config import Settings
from clipsearch.core.keys import Scope, make_entry, new_key


def fill(gw: Client, n: int = 5, seed: int = 300) -> list[str]:
    files = [(f"p{i}.png", noise(seed + i)) for i in range(n)]
    items = gw.add_images(files, captions=[f"caption {i}" for i in range(n)], metadata={"a": 1})
    gw.add_texts(["a free text"])
    return [str(i["id"]) for i in items]


def _sans_urls(record: dict[str, Any]) -> dict[str, Any]:
    # The URLs name the collection; everything else must be the same.
    return {k: v for k, v in record.items() if not k.endswith("_url")}


def records(gw: Client, target: Any) -> list[dict[str, Any]]:
    page = gw.list_records(target, limit=1000)
    assert page["next_cursor"] is None
    return page["items"]


@pytest.mark.parametrize(("fmt", "blobs"), [("parquet", False), ("npz", True)])
def test_cli_export_then_import_into_a_new_collection(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, blobs: bool
) -> None:
    src, dst = f"cli_src_{fmt}", f"cli_dst_{fmt}"
    with Client(url, collection=src) as gw:
        ids = fill(gw, seed=300 if blobs else 400)
    out = tmp_path / f"backup.{fmt}"
    argv = ["export", src, "--url", url, "--format", fmt, "--out", str(out)]
    assert main(argv + (["--blobs"] if blobs else [])) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["bytes"] == out.stat().st_size > 0
    assert main(["import", dst, str(out), "--url", url]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 5
    assert result["texts"] == 6
    with Client(url, collection=src) as a, Client(url, collection=dst) as b:
        for target in ("images", "texts"):
            assert [_sans_urls(r) for r in records(b, target)] == [
                _sans_urls(r) for r in records(a, target)
            ]
        assert [r["id"] for r in records(b, "images")] == sorted(ids)
        if blobs:
            assert b.request("GET", f"/v1/images/{ids[0]}/file").content == noise(300)


def test_cli_reports_a_refusal(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.parquet"
    assert main(["export", "never_made", "--url", url, "--out", str(out)]) == 1
    assert "404 unknown_collection" in capsys.readouterr().err
    assert not out.exists()  # no partial file left behind
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    assert main(["import", "cli_bad", str(bad), "--url", url]) == 1
    assert "422 invalid_export_file" in capsys.readouterr().err


@pytest.fixture
def app_parts(tmp_path: Path) -> Iterator[tuple[TestClient, FakeStore, FakeBlobs, dict[str, str]]]:
    keys = {s.name: new_key() for s in (Scope.write, Scope.admin)}
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        max_import_bytes=200_000,
        api_keys=[make_entry(k, Scope[name], name).line() for name, k in keys.items()],
    )
    store, blobs = FakeStore(), FakeBlobs()
    app = create_app(settings, encoder=FakeEncoder(), store=store, blobs=blobs)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, store, blobs, keys


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_import_needs_an_admin_key_and_a_bounded_body(
    app_parts: tuple[TestClient, FakeStore, FakeBlobs, dict[str, str]],
) -> None:
    client, _, _, keys = app_parts
    r = client.post("/v1/collections/x/import", content=b"PAR1", headers=_auth(keys["write"]))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "insufficient_scope"
    big = b"\0" * 300_000
    r = client.post("/v1/collections/x/import", content=big, headers=_auth(keys["admin"]))
    assert r.status_code == 413
    # Sent without a length (chunked), it is cut at the limit as it streams in.
    r = client.post(
        "/v1/collections/x/import",
        content=iter([big[:150_000], big[150_000:]]),
        headers=_auth(keys["admin"]),
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_a_failed_write_removes_what_the_import_wrote(
    app_parts: tuple[TestClient, FakeStore, FakeBlobs, dict[str, str]],
) -> None:
    client, store, blobs, keys = app_parts
    admin = _auth(keys["admin"])
    files = [("files", (f"p{i}.png", noise(500 + i), "image/png")) for i in range(3)]
    r = client.post(
        "/v1/images",
        params={"collection": "src"},
        files=files,
        headers=admin,
        data={"captions": ["one", "two", "three"]},
    )
    assert r.status_code == 200, r.text
    ids = sorted(i["id"] for i in r.json()["items"])
    export = client.get("/v1/collections/src/export", params={"blobs": "true"}, headers=admin)
    assert export.status_code == 200
    for image_id in ids:  # the files must be restored by the import itself
        blobs.delete(image_id)
    store.fail_upsert_ids = {ids[-1]}  # the images upsert fails after the texts went in
    r = client.post("/v1/collections/dst/import", content=export.content, headers=admin)
    assert r.status_code == 503, r.text
    assert store.count("dst", "images") == store.count("dst", "texts") == 0
    assert not any(blobs.exists(i) for i in ids)
    store.fail_upsert_ids = set()
    r = client.post("/v1/collections/dst/import", content=export.content, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"collection": "dst", "images": 3, "texts": 3, "blobs": 3}


def test_a_streamed_import_is_not_held_in_memory(tmp_path: Path) -> None:
    # The client sends the file from disk with its length, not as one bytes object.
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["length"] = request.headers.get("content-length")
        seen["chunked"] = request.headers.get("transfer-encoding")
        seen["body"] = b"".join(request.stream)  # type: ignore[arg-type]
        return httpx.Response(200, json={"collection": "c", "images": 0, "texts": 0, "blobs": 0})

    f = tmp_path / "e.parquet"
    f.write_bytes(b"x" * 3_000_000)
    with Client("http://gw", http=httpx.Client(transport=httpx.MockTransport(handler))) as gw:
        gw.import_collection("c", f)
    assert seen == {"length": "3000000", "chunked": None, "body": b"x" * 3_000_000}
