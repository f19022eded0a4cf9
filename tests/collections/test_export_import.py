"""Back up and restore on each backend: export (Parquet, npz, with files as a tar) ->
delete -> import gives the same records, counts and search results (ids, scores to 1e-5);
bad files are refused before anything is written."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import numpy as np
import pytest

from clipsearch.usecases.export_format import Manifest, ParquetOut
from tests.collections.conftest import Api, pictures

N = 12
EXTRA = ["a loose note", "another free text", "third text"]


def fill(api: Api, collection: str, seed: int = 31) -> tuple[list[str], list[bytes]]:
    pngs, captions = pictures(N, seed=seed)
    metas = [{"set": "demo", "i": i, "ok": i % 2 == 0} for i in range(N)]
    ids = api.stored(pngs, captions, collection=collection, metadata=json.dumps(metas))
    texts = [{"text": t, "metadata": {"lang": "en"}} for t in EXTRA]
    r = api.client.post("/v1/texts", params={"collection": collection}, json={"texts": texts})
    assert r.status_code == 200, r.text
    return ids, pngs


def everything(api: Api, collection: str, path: str) -> list[dict[str, Any]]:
    r = api.client.get(path, params={"collection": collection, "limit": 1000})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return list(r.json()["items"])


def snapshot(api: Api, collection: str, image_id: str) -> list[list[tuple[str, float]]]:
    """Hits of a few searches (text and image queries, both targets)."""
    params = {"collection": collection}
    out = []
    for target in ("images", "texts"):
        for query in ("a red circle", "a blue square", "note"):
            body = {"query": query, "target": target, "top_k": 20}
            r = api.client.post("/v1/search/text", params=params, json=body)
            assert r.status_code == 200, r.text
            out.append([(h["id"], h["score"]) for h in r.json()["hits"]])
        body = {"image_id": image_id, "target": target, "top_k": 20}
        r = api.client.post("/v1/search/image", params=params, json=body)
        assert r.status_code == 200, r.text
        out.append([(h["id"], h["score"]) for h in r.json()["hits"]])
    return out


def same_hits(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert [i for i, _ in x] == [i for i, _ in y]
        np.testing.assert_allclose([s for _, s in x], [s for _, s in y], atol=1e-5)


def export(api: Api, collection: str, **params: Any) -> bytes:
    r = api.client.get(f"/v1/collections/{collection}/export", params=params)
    assert r.status_code == 200, r.text
    return bytes(r.content)


def import_(api: Api, collection: str, data: bytes) -> Any:
    return api.client.post(
        f"/v1/collections/{collection}/import",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def delete_all(api: Api, collection: str) -> None:
    params = {"collection": collection, "filter": json.dumps({"set": "demo"})}
    assert api.client.delete("/v1/images", params=params).json()["deleted"] == N
    for text in everything(api, collection, "/v1/texts"):
        r = api.client.delete(f"/v1/texts/{text['id']}", params={"collection": collection})
        assert r.status_code == 200, r.text
    assert everything(api, collection, "/v1/images") == []
    assert everything(api, collection, "/v1/texts") == []


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_export_delete_import_restores_everything(api: Api, collection: str, fmt: str) -> None:
    ids, _ = fill(api, collection)
    before = snapshot(api, collection, ids[0])
    images = everything(api, collection, "/v1/images")
    texts = everything(api, collection, "/v1/texts")
    assert len(texts) == N + len(EXTRA)
    data = export(api, collection, format=fmt)
    delete_all(api, collection)
    r = import_(api, collection, data)
    assert r.status_code == 200, r.text
    assert r.json() == {"collection": collection, "images": N, "texts": len(texts), "blobs": 0}
    assert everything(api, collection, "/v1/images") == images  # records as they were
    assert everything(api, collection, "/v1/texts") == texts
    same_hits(snapshot(api, collection, ids[0]), before)


def test_import_into_a_new_collection_and_a_filtered_export(api: Api, collection: str) -> None:
    ids, _ = fill(api, collection)
    copy = f"{collection}_copy"
    r = import_(api, copy, export(api, collection, format="npz"))
    assert r.status_code == 200, r.text
    same_hits(snapshot(api, copy, ids[0]), snapshot(api, collection, ids[0]))
    # Filtered: the images with ok=true and the texts with lang=en... none match both.
    part = f"{collection}_part"
    r = import_(api, part, export(api, collection, filter=json.dumps({"ok": True})))
    assert r.status_code == 200, r.text
    assert r.json()["images"] == N // 2
    got = {i["id"] for i in everything(api, part, "/v1/images")}
    assert got == {i for k, i in enumerate(ids) if k % 2 == 0}


def test_tar_with_files_restores_the_originals(api: Api, collection: str) -> None:
    # Pictures of their own: a file another collection holds would not be deleted.
    ids, pngs = fill(api, collection, seed=77)
    data = export(api, collection, format="parquet", blobs="true")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert names[-1] == "export.parquet"
    assert sorted(names[:-1]) == sorted(f"blobs/{i}" for i in ids)
    delete_all(api, collection)
    params = {"collection": collection}
    assert api.client.get(f"/v1/images/{ids[0]}/file", params=params).status_code == 404
    r = import_(api, collection, data)
    assert r.status_code == 200, r.text
    assert r.json()["blobs"] == N
    for image_id, png in zip(ids, pngs, strict=True):
        r = api.client.get(f"/v1/images/{image_id}/file", params=params)
        assert r.status_code == 200
        assert r.content == png
        assert api.client.get(f"/v1/images/{image_id}/thumbnail", params=params).status_code == 200


def test_import_refuses_a_collection_that_is_not_empty(api: Api, collection: str) -> None:
    fill(api, collection)
    r = import_(api, collection, export(api, collection))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "collection_not_empty"


def crafted(api: Api, collection: str, *, dim: int, fingerprint: str | None = None) -> bytes:
    """A Parquet export made by hand, with the gateway's model unless told otherwise."""
    real = export(api, collection)
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(pa.BufferReader(real)).metadata.metadata[b"clipsearch.manifest"]
    manifest = Manifest.from_bytes(meta)
    manifest.dim = dim
    manifest.counts = {"images": 1, "texts": 0}
    if fingerprint is not None:
        manifest.fingerprint = fingerprint
    sink = io.BytesIO()
    out = ParquetOut(sink, dim)
    out.write([{"kind": "image", "id": "a" * 64, "vector": np.ones(dim), "metadata": {}}])
    out.close(manifest)
    return sink.getvalue()


def test_bad_files_are_refused_and_write_nothing(api: Api, collection: str) -> None:
    fill(api, collection)
    good = export(api, collection)
    npz = export(api, collection, format="npz")
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:  # a tar without a data file
        info = tarfile.TarInfo("blobs/x")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    cases: list[tuple[bytes, int, str]] = [
        (good[: len(good) // 2], 422, "invalid_export_file"),  # truncated
        (npz[: len(npz) - 100], 422, "invalid_export_file"),
        (b"just some text, not an export" * 30, 422, "invalid_export_file"),
        (tar_buf.getvalue(), 422, "invalid_export_file"),
        (crafted(api, collection, dim=5), 422, "invalid_export_file"),  # wrong dim
        (crafted(api, collection, dim=5, fingerprint="other"), 409, "model_mismatch"),
        (b"", 422, "empty_body"),
    ]
    target = f"{collection}_bad"
    for data, status, code in cases:
        r = import_(api, target, data)
        assert r.status_code == status, (code, r.text)
        assert r.json()["error"]["code"] == code
    # Nothing was created, let alone half-written.
    r = api.client.get("/v1/images", params={"collection": target})
    assert r.status_code == 404


def test_bad_export_requests(api: Api, collection: str) -> None:
    r = api.client.get("/v1/collections/never_made_here/export")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "unknown_collection"
    fill(api, collection)
    r = api.client.get(f"/v1/collections/{collection}/export", params={"format": "csv"})
    assert r.status_code == 422
    r = api.client.get(f"/v1/collections/{collection}/export", params={"filter": "[1]"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_filter"
