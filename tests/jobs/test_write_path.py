"""Ingest jobs store pictures through the same write path as uploads: a picture whose
vectors cannot be stored leaves nothing behind, its new blob included (jobs used to keep
it), while the other pictures of the batch are stored with all their captions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.store.blobs import blob_id_of
from clipsearch.store.protocol import ImageRecord, StoreError
from tests.helpers import noise
from tests.jobs.test_api import wait_done


class FailingStore:
    """The real store, whose image upserts fail for chosen ids (a store write fault)."""

    def __init__(self, inner: Any, fail_ids: set[str]) -> None:
        self.inner = inner
        self.fail_ids = fail_ids

    def upsert_images(
        self, group: str, records: Sequence[ImageRecord], *, fingerprint: str | None = None
    ) -> None:
        if any(r.id in self.fail_ids for r in records):
            raise StoreError("injected upsert failure")
        self.inner.upsert_images(group, records, fingerprint=fingerprint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_failed_vector_write_removes_the_pictures_blob_and_captions(
    settings: Settings, encoder: Any, store: Any, blobs: Any
) -> None:
    good, bad = noise(801), noise(802)
    failing = FailingStore(store, {blob_id_of(bad)})
    files = [("files", ("good.png", good, "image/png")), ("files", ("bad.png", bad, "image/png"))]
    data = {"captions": ["a good one", "a bad one"], "metadata": '{"batch": "w1"}'}
    with TestClient(create_app(settings, encoder=encoder, store=failing, blobs=blobs)) as client:
        body = wait_done(client, client.post("/v1/ingest", files=files, data=data).json()["job_id"])
    items = {i["source"]: i for i in body["items"]}
    assert items["good.png"]["status"] == "stored"
    assert items["bad.png"]["status"] == "failed"
    assert "could not store the vectors" in items["bad.png"]["error"]
    assert blobs.exists(blob_id_of(good))
    assert not blobs.exists(blob_id_of(bad))
    group = body["collection"]
    texts = store.search(group, "texts", encoder.encode_texts_sync(["a bad one"]), top_k=10)[0]
    assert sorted(h.fields["text"] for h in texts) == ["a good one"]
    assert store.get(group, "images", [blob_id_of(good)])[0]["metadata"]["batch"] == "w1"
