"""The one write path for pictures (uploads and ingest jobs): records, captions, undo."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tests.unit.usecase_fakes import DIM, FakeBlobs, FakeEncoder, FakeStore, picture

from clipsearch.core.config import Settings
from clipsearch.core.errors import Unavailable
from clipsearch.encoder import preprocess
from clipsearch.encoder.protocol import EncoderError, PixelTensor, Vectors
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import image_id_of, text_id_of
from clipsearch.usecases.image_patch import ImagePatch, ImagePatcher
from clipsearch.usecases.images import ImageInput, ImageService
from clipsearch.usecases.picture_writes import NewPicture, PictureWriter


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _store(*groups: str) -> FakeStore:
    store = FakeStore()
    for g in groups:
        store.ensure_group(g, dim=DIM, model_name="m", fingerprint="fp1")
    return store


def _picture(data: bytes, captions: tuple[str, ...] = (), **metadata: Any) -> NewPicture:
    vec = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    return NewPicture(
        id=image_id_of(data), data=data, source="s.jpg", content_type="image/jpeg", width=16,
        height=12, vector=vec, captions=list(captions),
        caption_vectors=[vec for _ in captions], metadata=metadata,
    )  # fmt: skip


def _write(w: PictureWriter, group: str, p: NewPicture, **kw: Any) -> list[Any]:
    assert not run(w.store_blobs([p]))
    return list(run(w.store_records(group, [p], **kw)))


def test_several_captions_and_shared_metadata_merged_under_the_pictures_own() -> None:
    store, blobs = _store("g"), FakeBlobs()
    p = _picture(picture(1), ("a red circle", "a round red thing"), k="own", only="mine")
    assert _write(PictureWriter(store, blobs), "g", p, metadata={"k": "job", "batch": "t1"}) == []
    texts = store.data[("g", "texts")]
    assert set(texts) == {text_id_of(c, p.id) for c in p.captions}
    row = store.data[("g", "images")][p.id]
    assert row["caption"] == "a red circle"
    assert row["metadata"] == {"k": "own", "only": "mine", "batch": "t1"}
    assert all(t["metadata"] == row["metadata"] for t in texts.values())


def test_failed_write_removes_captions_and_the_new_blob() -> None:
    # Chosen behaviour (uploads did this, jobs kept the blob): nothing of a failed picture
    # stays, its blob included, on both paths.
    store, blobs = _store("g"), FakeBlobs()
    p = _picture(picture(2), ("cap",))
    store.fail_upsert_ids = {p.id}
    failed = _write(PictureWriter(store, blobs), "g", p)
    assert [(q.id, e.code) for q, e in failed] == [(p.id, "store_write_failed")]
    assert store.data[("g", "texts")] == {}
    assert store.data[("g", "images")] == {}
    assert blobs.blobs == {}


def test_failed_write_keeps_a_blob_another_collection_stores() -> None:
    store, blobs = _store("a", "b"), FakeBlobs()
    w = PictureWriter(store, blobs)
    p = _picture(picture(3))
    assert _write(w, "a", p) == []
    again = _picture(picture(3))
    store.fail_upsert_ids = {p.id}
    assert run(w.store_blobs([again])) == []
    assert again.blob_is_new is False  # already there: not ours to remove
    assert len(run(w.store_records("b", [again]))) == 1
    assert set(blobs.blobs) == {p.id}
    # Even a blob this write created stays while a stored image shares its content hash.
    w.discard_blobs([p.id])
    assert set(blobs.blobs) == {p.id}


def test_one_bad_record_in_a_batch_fails_alone() -> None:
    store, blobs = _store("g"), FakeBlobs()
    w = PictureWriter(store, blobs)
    good, bad = _picture(picture(4), ("g",)), _picture(picture(5), ("b",))
    store.fail_upsert_ids = {bad.id}
    assert run(w.store_blobs([good, bad])) == []
    failed = run(w.store_records("g", [good, bad]))
    assert [q.id for q, _ in failed] == [bad.id]
    assert set(store.data[("g", "images")]) == {good.id}
    assert set(blobs.blobs) == {good.id}


def test_blob_write_failure_leaves_nothing() -> None:
    store, blobs = _store("g"), FakeBlobs()
    blobs.fail = True
    failed = run(PictureWriter(store, blobs).store_blobs([_picture(picture(6))]))
    assert [e.code for _, e in failed] == ["blob_write_failed"]
    assert blobs.blobs == {}


class PixelEncoderFake(FakeEncoder):
    """A fake with the pixel fast path: vectors from the decoded picture, not the bytes."""

    def input_size(self) -> int:
        return 8

    def preprocess(self, image: Image.Image) -> PixelTensor:
        return np.full((3, 8, 8), float(image.width), dtype=np.float32)

    def encode_pixels(self, pixels: PixelTensor) -> Vectors:
        self.calls.append(("pixels", len(pixels)))
        return np.full((len(pixels), DIM), 1 / np.sqrt(DIM), dtype=np.float32)


class RecordingBlobs(FakeBlobs):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[Image.Image | None] = []

    def put(
        self, blob_id: str, data: bytes, content_type: str, image: Image.Image | None = None
    ) -> None:
        self.images.append(image)
        super().put(blob_id, data, content_type, image)


def test_upload_decodes_each_picture_once(monkeypatch: pytest.MonkeyPatch) -> None:
    decodes: list[int] = []
    real = preprocess.decode_image

    def counting(data: bytes, **kw: Any) -> Any:
        decodes.append(len(data))
        return real(data, **kw)

    monkeypatch.setattr(preprocess, "decode_image", counting)
    encoder, store, blobs = PixelEncoderFake(), FakeStore(), RecordingBlobs()
    service = ImageService(Settings(), encoder, store, blobs, Collections(store, encoder))
    items = [ImageInput(picture(7), "a.jpg", caption="c"), ImageInput(picture(8), "b.jpg")]
    res = run(service.store_images("default", items))
    assert [r.status for r in res] == ["stored", "stored"]
    assert len(decodes) == 2  # validate, encode and thumbnail share one decode
    assert encoder.calls == [("pixels", 2), ("text", 1)]
    assert all(isinstance(im, Image.Image) for im in blobs.images)


class FlakyEncoder(FakeEncoder):
    """Fails every image batch that contains one chosen picture."""

    def __init__(self, bad: bytes) -> None:
        super().__init__()
        self.bad = bad

    async def encode_images(self, images: Sequence[bytes]) -> np.ndarray:
        if self.bad in images:
            raise EncoderError("model crashed on this one")
        return await super().encode_images(images)


def test_upload_that_fails_to_encode_leaves_no_blob() -> None:
    # The blob is written right after the one decode (so the decoded picture is not kept
    # for the whole request); an item failing later removes it again.
    good, bad = picture(9), picture(10)
    encoder, store, blobs = FlakyEncoder(bad), FakeStore(), FakeBlobs()
    service = ImageService(Settings(), encoder, store, blobs, Collections(store, encoder))
    res = run(service.store_images("default", [ImageInput(good, "g"), ImageInput(bad, "b")]))
    assert [r.status for r in res] == ["stored", "failed"]
    assert res[1].error is not None
    assert res[1].error.code == "encoder_unavailable"
    assert set(blobs.blobs) == {image_id_of(good)}


class _ImageWritesFail(FakeStore):
    fail = False

    def upsert_images(
        self, group: str, records: Sequence[Any], *, fingerprint: str | None = None
    ) -> None:
        if self.fail:
            raise RuntimeError("store gone")
        super().upsert_images(group, records, fingerprint=fingerprint)


def test_a_failed_change_puts_the_old_texts_back() -> None:
    store = _ImageWritesFail()
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp1")
    writer = PictureWriter(store, FakeBlobs())
    p = _picture(picture(3), ("a red circle",), k="v")
    assert _write(writer, "g", p) == []
    store.fail = True
    patcher = ImagePatcher(Settings(_env_file=None), FakeEncoder(), store, writer)
    patch = ImagePatch(metadata={"k": "new"}, add_captions=["a blue square"])
    with pytest.raises(Unavailable) as err:
        run(patcher.apply("g", p.id, patch))
    assert err.value.code == "store_write_failed"
    texts = store.data[("g", "texts")]
    old_text = text_id_of("a red circle", p.id)
    assert set(texts) == {old_text}  # the new caption is gone again
    assert texts[old_text]["metadata"] == {"k": "v"}  # the relabelled one is as it was
    assert store.data[("g", "images")][p.id]["metadata"] == {"k": "v"}
