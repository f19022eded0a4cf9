"""Records, files, deletes, stats, metrics, the web page and the OpenAPI document."""

from __future__ import annotations

import io

from PIL import Image

from tests.api.conftest import Gateway, upload
from tests.helpers import solid


def test_record_file_and_thumbnail(gateway: Gateway) -> None:
    image_id, data = gateway.corpus.ids[1], gateway.corpus.pngs[1]
    r = gateway.client.get(f"/v1/images/{image_id}")
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["id"] == image_id
    assert rec["caption"] == gateway.corpus.captions[1]
    assert (rec["width"], rec["height"], rec["content_type"]) == (224, 224, "image/png")
    assert "vector" not in rec
    f = gateway.client.get(rec["image_url"])
    assert f.status_code == 200
    assert f.content == data
    assert f.headers["content-type"] == "image/png"
    assert f.headers["etag"] == f'"{image_id}"'
    assert "immutable" in f.headers["cache-control"]
    cached = gateway.client.get(rec["image_url"], headers={"If-None-Match": f'"{image_id}"'})
    assert cached.status_code == 304
    assert cached.content == b""
    t = gateway.client.get(rec["thumbnail_url"])
    assert t.status_code == 200
    assert t.headers["etag"] == f'"{image_id}"'
    thumb = Image.open(io.BytesIO(t.content))
    assert max(thumb.size) <= 256
    assert t.headers["content-type"].startswith("image/")


def test_delete_image_cascades_to_texts_and_blob(gateway: Gateway) -> None:
    c = "deletes"
    pngs = gateway.corpus.pngs[50:53]
    r = upload(gateway.client, pngs, ["cap a", "cap b", "cap c"], collection=c)
    ids = [i["id"] for i in r.json()["items"]]
    before = gateway.stats(c)["counts"]
    assert before == {"images": 3, "texts": 3}
    d = gateway.client.delete(f"/v1/images/{ids[0]}", params={"collection": c})
    assert d.status_code == 200, d.text
    assert d.json() == {"id": ids[0], "deleted": True, "texts_deleted": 1}
    assert gateway.stats(c)["counts"] == {"images": 2, "texts": 2}
    assert gateway.client.get(f"/v1/images/{ids[0]}", params={"collection": c}).status_code == 404
    # The same picture is still in the shared corpus: its file must survive there.
    assert gateway.client.get(f"/v1/images/{ids[0]}/file").status_code == 200
    hits = gateway.client.post(
        "/v1/search/text",
        params={"collection": c},
        json={"query": "cap a", "target": "texts", "top_k": 10},
    ).json()["hits"]
    assert ids[0] not in {h["image_id"] for h in hits}
    again = gateway.client.delete(f"/v1/images/{ids[0]}", params={"collection": c})
    assert again.status_code == 404
    # A text on its own: delete it by id.
    t = gateway.client.post("/v1/texts", params={"collection": c}, json={"texts": [{"text": "z"}]})
    text_id = t.json()["items"][0]["id"]
    assert (
        gateway.client.delete(f"/v1/texts/{text_id}", params={"collection": c}).status_code == 200
    )
    assert (
        gateway.client.delete(f"/v1/texts/{text_id}", params={"collection": c}).status_code == 404
    )
    assert gateway.stats(c)["counts"] == {"images": 2, "texts": 2}


def test_delete_removes_blob_when_last_reference(gateway: Gateway) -> None:
    c = "lonely"
    r = upload(gateway.client, [solid((40, 30), (1, 2, 3))], collection=c)
    image_id = r.json()["items"][0]["id"]
    blob_bytes = gateway.stats()["blobs"]["bytes"]
    assert gateway.client.get(f"/v1/images/{image_id}/file", params={"collection": c}).content
    assert (
        gateway.client.delete(f"/v1/images/{image_id}", params={"collection": c}).status_code == 200
    )
    assert gateway.stats()["blobs"]["bytes"] < blob_bytes


def test_stats(gateway: Gateway) -> None:
    gateway.client.post("/v1/search/text", json={"query": "a green star"})
    s = gateway.client.get("/v1/stats").json()
    default = s["collections"]["default"]
    assert default["counts"]["images"] == len(set(gateway.corpus.ids))
    assert default["counts"]["texts"] >= len(set(gateway.corpus.ids))
    assert default["index_type"] == "HNSW"
    assert default["index_params"]
    assert default["dim"] == s["encoder"]["dim"] > 0
    assert default["fingerprint"] == s["encoder"]["fingerprint"]
    assert s["encoder"]["mode"] == "local"
    assert s["encoder"]["health"] == "ok"
    assert s["store"] == {
        "kind": "faiss",  # the embedded default
        "uri": str(gateway.settings.data_dir / "store.sqlite3"),
        "health": "ok",
    }
    assert s["blobs"]["bytes"] >= sum(len(p) for p in gateway.corpus.pngs)
    assert s["uptime_s"] > 0
    assert s["latency"]["search"]["count"] >= 1
    assert s["latency"]["search"]["p95_ms"] >= s["latency"]["search"]["p50_ms"] > 0
    assert s["latency"]["ingest"]["count"] >= 3


def test_metrics(gateway: Gateway) -> None:
    gateway.client.post("/v1/search/text", json={"query": "a white cross"})
    gateway.client.get(f"/v1/images/{gateway.corpus.ids[0]}")
    r = gateway.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'route="/v1/search/text",status="200"' in text
    # Route templates, never raw ids, so labels stay bounded.
    assert 'route="/v1/images/{image_id}"' in text
    assert gateway.corpus.ids[0] not in text
    assert 'clipsearch_encoder_batch_size_bucket{kind="image"' in text
    assert 'clipsearch_encoder_duration_seconds_count{kind="text",outcome="ok"}' in text
    assert 'clipsearch_store_call_duration_seconds_count{op="search",outcome="ok"}' in text


def test_web_page_and_openapi(gateway: Gateway) -> None:
    page = gateway.client.get("/")
    assert page.status_code == 200
    # The app's script is a module file it loads (so its CSP needs no unsafe-inline),
    # which imports the views: the search view calls the search routes.
    assert '<script type="module" src="/web/app.js"></script>' in page.text
    script = gateway.client.get("/web/app.js")
    assert script.status_code == 200
    assert 'from "./search.js"' in script.text
    search = gateway.client.get("/web/search.js")
    assert "/v1/search/text" in search.text
    assert "/v1/search/image" in search.text
    spec = gateway.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/images",
        "/v1/texts",
        "/v1/search/text",
        "/v1/search/image",
        "/v1/search/batch",
        "/v1/images/{image_id}",
        "/v1/images/{image_id}/file",
        "/v1/images/{image_id}/thumbnail",
        "/v1/texts/{text_id}",
        "/v1/stats",
    ):
        assert path in paths, path
        for op in paths[path].values():
            assert op.get("description"), f"{path} has no docstring"
    image_body = paths["/v1/search/image"]["post"]["requestBody"]["content"]
    assert set(image_body) == {"multipart/form-data", "application/json"}
    schemas = spec["components"]["schemas"]
    for name in ("TextSearchRequest", "BatchSearchRequest", "SearchResponse", "StoreResponse"):
        assert schemas[name].get("examples"), name
