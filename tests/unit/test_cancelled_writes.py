"""A write cancelled mid-way (the client of a sync upload went away, a job was cancelled) or
killed mid-way (the gateway died) leaves the whole picture or nothing: never caption texts
without their image."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from tests.unit.usecase_fakes import DIM, FakeBlobs, FakeStore, picture

from clipsearch.store.protocol import ImageRecord, TextRecord
from clipsearch.usecases.common import image_id_of, to_the_end
from clipsearch.usecases.picture_writes import NewPicture, PictureWriter
from clipsearch.usecases.write_journal import WriteJournal


class SlowCaptionStore(FakeStore):
    """Holds every caption upsert until ``release`` is set; ``entered`` says one began. A
    cancellation then lands between a batch's captions and its image vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def upsert_texts(
        self, group: str, records: Sequence[TextRecord], *, fingerprint: str | None = None
    ) -> None:
        self.entered.set()
        assert self.release.wait(10)
        super().upsert_texts(group, records, fingerprint=fingerprint)


def _picture(i: int) -> NewPicture:
    data = picture(i)
    vec = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    return NewPicture(
        id=image_id_of(data), data=data, source=f"{i}.png", content_type="image/png", width=16,
        height=12, vector=vec, captions=[f"caption {i}", f"another {i}"],
        caption_vectors=[vec, vec],
    )  # fmt: skip


def test_cancelled_between_captions_and_image_stores_the_whole_picture() -> None:
    store = SlowCaptionStore()
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    writer = PictureWriter(store, FakeBlobs())
    pictures = [_picture(i) for i in range(3)]

    async def main() -> None:
        task = asyncio.create_task(writer.store_records("g", pictures))
        await asyncio.to_thread(store.entered.wait, 10)
        task.cancel()  # the request is cancelled right at the write step
        await asyncio.sleep(0.05)
        store.release.set()
        with pytest.raises(asyncio.CancelledError):
            await task  # the cancellation still reaches the caller, once the write is done
        await asyncio.sleep(0.2)  # a worker thread left behind would finish by now

    asyncio.run(main())
    # The whole pictures: every image with both its captions (never captions alone).
    assert set(store.data[("g", "images")]) == {p.id for p in pictures}
    assert len(store.data[("g", "texts")]) == 6


def test_to_the_end_passes_results_errors_and_its_own_cancellation() -> None:
    async def value() -> int:
        await asyncio.sleep(0)
        return 7

    async def fails() -> None:
        raise ValueError("boom")

    async def main() -> None:
        assert await to_the_end(value()) == 7
        with pytest.raises(ValueError, match="boom"):
            await to_the_end(fails())
        inner = asyncio.ensure_future(asyncio.sleep(10))
        outer = asyncio.create_task(to_the_end(inner))
        await asyncio.sleep(0)
        inner.cancel()  # the work itself cancelled: the caller sees it at once
        with pytest.raises(asyncio.CancelledError):
            await outer

    asyncio.run(main())


class Killed(BaseException):
    """Stands for the process dying: like ``kill -9``, nothing after it runs (no handler
    catches a BaseException that is not a cancellation)."""


class DyingStore(FakeStore):
    """Dies at the first image upsert: the batch's captions are written, its images not."""

    def upsert_images(
        self, group: str, records: Sequence[ImageRecord], *, fingerprint: str | None = None
    ) -> None:
        raise Killed


def test_a_crash_between_captions_and_image_is_undone_at_the_next_start(tmp_path: Path) -> None:
    store = DyingStore()
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    journal = WriteJournal(tmp_path / "pending-writes")
    pictures = [_picture(i) for i in range(3)]
    with pytest.raises(Killed):
        asyncio.run(PictureWriter(store, FakeBlobs(), journal).store_records("g", pictures))
    assert len(store.data[("g", "texts")]) == 6  # the orphans a crash used to leave
    assert len(journal.pending()) == 1

    # The next start: a fresh writer over the same store and journal folder.
    restarted = PictureWriter(store, FakeBlobs(), WriteJournal(tmp_path / "pending-writes"))
    assert asyncio.run(restarted.recover()) == 6
    assert store.data[("g", "texts")] == {}
    assert journal.pending() == []


def test_recovery_keeps_whole_pictures_and_forgets_dropped_collections(tmp_path: Path) -> None:
    store = FakeStore()
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    journal = WriteJournal(tmp_path)
    whole = _picture(7)
    asyncio.run(PictureWriter(store, FakeBlobs()).store_records("g", [whole]))
    texts = [f"{whole.id}-caption"]
    journal.begin("g", {whole.id: list(store.data[("g", "texts")])})  # a crash after the image
    journal.begin("dropped", {"x": texts})
    (tmp_path / "half.tmp").write_bytes(b"{")  # died while writing its journal
    assert asyncio.run(PictureWriter(store, FakeBlobs(), journal).recover()) == 0
    assert len(store.data[("g", "texts")]) == 2
    assert list(tmp_path.iterdir()) == []


def test_normal_writes_leave_no_journal(tmp_path: Path) -> None:
    store = FakeStore()
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    journal = WriteJournal(tmp_path)
    asyncio.run(PictureWriter(store, FakeBlobs(), journal).store_records("g", [_picture(8)]))
    store.fail_upsert_ids = {_picture(9).id}
    failed = asyncio.run(
        PictureWriter(store, FakeBlobs(), journal).store_records("g", [_picture(9)])
    )
    assert len(failed) == 1
    assert journal.pending() == []
