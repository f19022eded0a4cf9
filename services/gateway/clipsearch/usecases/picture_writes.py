"""Storing pictures: the one write path of ``POST /v1/images`` and of ingest jobs.

Per picture the order is blob (original + thumbnail) -> caption texts -> image vector. The
image vector goes last, so an image is searchable only once its file and captions exist.
Records are written a batch at a time; when a batch fails it is retried picture by
picture, so one bad record fails alone. A picture that fails leaves nothing behind: its
caption texts are deleted, and so is its blob when this write created it and no stored
image, in any collection, has the same content hash (blobs are content-addressed and
shared by collections). A cancelled caller (a client gone mid-request) does not stop the
record writes half-way: a picture is then stored whole. Callers decide what comes before
and between the steps (an ingest job writes blobs while it encodes and marks its items
between blobs and vectors).

Changing a stored picture (``PATCH /v1/images/{id}``, an upload of a picture already
stored with a new caption or metadata) goes through :meth:`PictureWriter.update_records`:
new and re-labelled caption texts first, then the image record (its vector unchanged),
then the removed captions are deleted. If a step fails, what was written is put back as it
was (best effort), so a failed change leaves the old record in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from clipsearch.core.errors import ClipsearchError, Unavailable
from clipsearch.encoder.protocol import Encoder, Vectors
from clipsearch.store.protocol import ImageRecord, TextRecord, VectorStore
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.common import each_alone_on_failure, run_sync, text_id_of, to_the_end
from clipsearch.usecases.write_journal import WriteJournal, recover

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NewPicture:
    """One picture ready to be stored: bytes, what decoding found, vectors, captions."""

    id: str  # the content hash of ``data``
    data: bytes
    source: str
    content_type: str
    width: int
    height: int
    vector: Vectors | None = None
    # Normalised captions, several allowed (a caption file may give five per picture).
    captions: list[str] = field(default_factory=list)
    caption_vectors: list[Vectors] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    blob_is_new: bool = False  # this write created the blob (so may remove it on failure)


@dataclass(slots=True)
class PictureChange:
    """A change to a stored picture, ready to write (captions already encoded).

    ``image`` is the stored row with its ``vector``; ``texts`` the linked text rows to
    write (new captions with their vector, kept ones with new metadata) and ``before`` the
    stored rows they replace (to put back on failure); ``remove`` the text ids to delete.
    """

    image: dict[str, Any]
    texts: list[TextRecord] = field(default_factory=list)
    before: list[dict[str, Any]] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


def blob_write_failed(exc: BaseException) -> ClipsearchError:
    return Unavailable(f"could not store the file: {exc}", code="blob_write_failed")


class PictureWriter:
    """Writes :class:`NewPicture` batches to the blob store and the vector store."""

    def __init__(
        self, store: VectorStore, blobs: Blobs, journal: WriteJournal | None = None
    ) -> None:
        self._store = store
        self._blobs = blobs
        # Sync uploads keep one; ingest jobs need none (a resumed job rewrites its items).
        self._journal = journal

    async def recover(self) -> int:
        """At start-up: remove the caption texts of pictures a crash left half-written."""
        if self._journal is None:
            return 0
        return await run_sync(recover, self._journal, self._store)

    # --- blobs (sync: the caller picks the thread) -------------------------------------------
    def put_blob(
        self, blob_id: str, data: bytes, content_type: str, image: Image.Image | None = None
    ) -> bool:
        """Original + thumbnail unless the blob exists; True when this call created it.
        ``image`` is ``data`` already decoded and upright, so the thumbnail needs no second
        decode. On failure whatever was written (e.g. the original, not its thumbnail) is
        removed again before the error is raised."""
        if self._blobs.exists(blob_id):
            return False
        try:
            self._blobs.put(blob_id, data, content_type, image)
        except BaseException:
            self.discard_blobs([blob_id])
            raise
        return True

    def discard_blobs(self, blob_ids: Sequence[str]) -> None:
        """Delete the blobs of failed writes that no stored image references (best effort:
        a failure is logged, an orphan blob is harmless)."""
        try:
            wanted = set(blob_ids)
            for group in self._store.list_groups():
                wanted -= self._store.existing_ids(group, "images", list(wanted))
                if not wanted:
                    return
            for blob_id in wanted:
                self._blobs.delete(blob_id)
        except Exception as exc:
            log.error("could not remove the blobs of failed writes %s: %s", list(blob_ids), exc)

    async def store_blobs(
        self, pictures: Sequence[NewPicture], images: Sequence[Image.Image | None] = ()
    ) -> list[tuple[NewPicture, ClipsearchError]]:
        """:meth:`put_blob` for each picture (``images[i]``: its decoded picture, if any);
        sets ``blob_is_new``; returns the pictures that failed, with their error."""
        failed: list[tuple[NewPicture, ClipsearchError]] = []
        for i, p in enumerate(pictures):
            image = images[i] if i < len(images) else None
            try:
                p.blob_is_new = await run_sync(self.put_blob, p.id, p.data, p.content_type, image)
            except Exception as exc:
                log.warning("blob write failed for %s: %s", p.id, exc)
                failed.append((p, blob_write_failed(exc)))
        return failed

    # --- records ------------------------------------------------------------------------------
    async def store_records(
        self,
        group: str,
        pictures: Sequence[NewPicture],
        *,
        metadata: dict[str, Any] | None = None,
        fingerprint: str | None = None,
    ) -> list[tuple[NewPicture, ClipsearchError]]:
        """Caption texts then image vectors of ``pictures`` (their blobs already stored)
        into the pair of model ``fingerprint`` (the collection's live model; see
        :meth:`VectorStore.upsert_images`); ``metadata`` (e.g. a job's) is merged under
        each picture's own. Returns the pictures that failed, with their error, once their
        partial writes are undone."""
        now = int(time.time())
        records = {p.id: _records(p, now, metadata or {}) for p in pictures}
        store = self._store

        async def write(batch: list[NewPicture]) -> None:
            texts = [t for p in batch for t in records[p.id][0]]
            if texts:
                await run_sync(lambda: store.upsert_texts(group, texts, fingerprint=fingerprint))
            images = [records[p.id][1] for p in batch]
            await run_sync(lambda: store.upsert_images(group, images, fingerprint=fingerprint))

        # Killed between captions and image vector, no `finally` runs: the journal says
        # which captions to remove at the next start (see write_journal).
        texts_of = {p.id: [t.id for t in records[p.id][0]] for p in pictures if p.captions}
        journal = self._journal if texts_of else None
        entry = None if journal is None else await run_sync(journal.begin, group, texts_of)

        async def write_or_undo() -> list[tuple[NewPicture, ClipsearchError]]:
            failed = await each_alone_on_failure(list(pictures), write)
            out: list[tuple[NewPicture, ClipsearchError]] = []
            for p, exc in failed:
                await self._undo(group, p, [t.id for t in records[p.id][0]])
                error = Unavailable(
                    f"could not store the vectors: {exc}", code="store_write_failed"
                )
                out.append((p, error))
            if journal is not None and entry is not None:
                await run_sync(journal.end, entry)  # whole or undone: nothing to recover
            return out

        # Cancelled between a picture's captions and its image vector (the client went away
        # mid-upload), the captions would stay behind without their image: the writes and
        # their undo run to the end whatever happens to the caller.
        return await to_the_end(write_or_undo())

    async def mirror(
        self,
        group: str,
        encoder: Encoder | None,
        pictures: Sequence[NewPicture],
        *,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """During a migration: the pictures just stored, encoded again by the shadow pair's
        model ``encoder`` and written to that pair. Best effort: a failure is logged, and
        the migration's final catch-up copies whatever the shadow pair lacks."""
        if encoder is None or not pictures:
            return
        try:
            vectors = await encoder.encode_images([p.data for p in pictures])
            captions = [c for p in pictures for c in p.captions]
            text_vectors = await encoder.encode_texts(captions) if captions else None
            copies, k = [], 0
            for p, v in zip(pictures, vectors, strict=True):
                n = len(p.captions)
                assert text_vectors is not None or n == 0
                cv = list(text_vectors[k : k + n]) if n and text_vectors is not None else []
                k += n
                copies.append(replace(p, vector=v, caption_vectors=cv))
            now = int(time.time())
            fp, store = encoder.fingerprint, self._store
            records = [_records(p, now, metadata or {}) for p in copies]
            texts = [t for ts, _ in records for t in ts]
            images = [image for _, image in records]
            if texts:
                await run_sync(lambda: store.upsert_texts(group, texts, fingerprint=fp))
            await run_sync(lambda: store.upsert_images(group, images, fingerprint=fp))
        except Exception as exc:
            log.warning("mirror write to the migration's shadow pair failed: %s", exc)

    async def mirror_change(
        self, group: str, encoder: Encoder | None, change: PictureChange
    ) -> None:
        """During a migration: a change to a stored picture (:meth:`update_records`)
        written to the shadow pair too, its texts and image encoded again by that pair's
        model ``encoder`` (the image from its original). Removed captions need nothing:
        a delete reaches both pairs. Best effort: a failure is logged."""
        if encoder is None:
            return
        store, fp = self._store, encoder.fingerprint
        try:
            if change.texts:
                vectors = await encoder.encode_texts([t.text for t in change.texts])
                texts = [replace(t, vector=v) for t, v in zip(change.texts, vectors, strict=True)]
                await run_sync(lambda: store.upsert_texts(group, texts, fingerprint=fp))
            data = await run_sync(self._blobs.read, str(change.image["id"]))
            vector = (await encoder.encode_images([data]))[0]
            image = _image_record({**change.image, "vector": vector})
            await run_sync(lambda: store.upsert_images(group, [image], fingerprint=fp))
        except Exception as exc:
            log.warning("mirror of a change to the migration's shadow pair failed: %s", exc)

    async def update_records(self, group: str, change: PictureChange) -> None:
        """Write ``change``: its texts, then the image record, then the removals. On a
        failure the texts are put back (rows that existed) or deleted (new ones) and
        :class:`Unavailable` ``store_write_failed`` is raised."""
        image = _image_record(change.image)
        old = {str(r["id"]): r for r in change.before}

        async def write() -> None:
            try:
                if change.texts:
                    await run_sync(self._store.upsert_texts, group, change.texts)
                await run_sync(self._store.upsert_images, group, [image])
            except Exception as exc:
                await self._put_back(group, change.texts, old)
                raise Unavailable(
                    f"could not store the change: {exc}", code="store_write_failed"
                ) from exc
            if change.remove:
                try:
                    await run_sync(self._store.delete, group, "texts", change.remove)
                except Exception as exc:
                    # The image is written: its removed captions stay searchable until the
                    # same patch is sent again (it is idempotent).
                    raise Unavailable(
                        f"could not remove the captions: {exc}", code="store_write_failed"
                    ) from exc

        await to_the_end(write())

    async def _put_back(
        self, group: str, written: list[TextRecord], old: dict[str, dict[str, Any]]
    ) -> None:
        try:
            new_ids = [t.id for t in written if t.id not in old]
            if new_ids:
                await run_sync(self._store.delete, group, "texts", new_ids)
            if old:
                await run_sync(self._store.upsert_texts, group, [_text(r) for r in old.values()])
        except Exception as exc:
            log.error("could not put back the texts of a failed change: %s", exc)

    async def discard(self, pictures: Sequence[NewPicture]) -> None:
        """Remove the blobs this write created for ``pictures`` (which failed elsewhere)."""
        ids = [p.id for p in pictures if p.blob_is_new]
        if ids:
            await run_sync(self.discard_blobs, ids)

    async def _undo(self, group: str, p: NewPicture, text_ids: list[str]) -> None:
        try:
            if text_ids:
                await run_sync(self._store.delete, group, "texts", text_ids)
        except Exception as exc:
            log.error("could not undo the caption texts of %s: %s", p.id, exc)
        await self.discard([p])


def _image_record(row: dict[str, Any]) -> ImageRecord:
    """A stored image row (with its ``vector``) as the record that writes it again."""
    return ImageRecord(
        id=str(row["id"]),
        vector=row["vector"],
        source=str(row.get("source") or ""),
        content_type=str(row.get("content_type") or ""),
        width=int(row.get("width") or 0),
        height=int(row.get("height") or 0),
        caption=str(row.get("caption") or ""),
        metadata=dict(row.get("metadata") or {}),
        created_at=int(row.get("created_at") or 0),
    )


def _records(
    p: NewPicture, now: int, shared: dict[str, Any]
) -> tuple[list[TextRecord], ImageRecord]:
    assert p.vector is not None, "encode before storing"
    metadata = {**shared, **p.metadata}
    texts = [
        TextRecord(
            id=text_id_of(c, p.id), vector=v, text=c, image_id=p.id, metadata=metadata,
            created_at=now,
        )
        for c, v in zip(p.captions, p.caption_vectors, strict=True)
    ]  # fmt: skip
    image = ImageRecord(
        id=p.id,
        vector=p.vector,
        source=p.source,
        content_type=p.content_type,
        width=p.width,
        height=p.height,
        caption=p.captions[0] if p.captions else "",
        metadata=metadata,
        created_at=now,
    )
    return texts, image


def _text(row: dict[str, Any]) -> TextRecord:
    """A stored text row (read with its vector) as a record to write again."""
    return TextRecord(
        id=str(row["id"]),
        vector=row["vector"],
        text=str(row.get("text") or ""),
        image_id=str(row.get("image_id") or ""),
        metadata=dict(row.get("metadata") or {}),
        created_at=int(row.get("created_at") or 0),
    )


__all__ = ["NewPicture", "PictureChange", "PictureWriter", "blob_write_failed"]
