"""Image use-cases: store uploads (vector + blob + caption text), read and delete them.

Per upload the order is: validate -> encode -> blob -> caption text vector -> image vector.
The image vector is written last, so an image is only searchable once everything it points
to exists; when a later step fails the earlier writes of that item are undone and the item
is reported ``failed``. One item's failure never costs the others their place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from clipsearch.core.config import Settings
from clipsearch.core.errors import (
    ClipsearchError,
    InvalidRequest,
    NotFoundError,
    Unavailable,
)
from clipsearch.encoder.protocol import Encoder, EncoderError, ImageDecodeError, Vectors
from clipsearch.store.protocol import ImageRecord, TextRecord, VectorStore
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import (
    check_metadata,
    check_text,
    image_id_of,
    run_sync,
    text_id_of,
    upsert_each,
)
from clipsearch.usecases.imaging import ImageInfo, check_size, inspect_image

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)
Status = Literal["stored", "duplicate", "failed"]


class Blobs(Protocol):
    """What the use-cases need from the blob store (original bytes + a thumbnail)."""

    def exists(self, blob_id: str) -> bool: ...

    def put(
        self, blob_id: str, data: bytes, content_type: str, image: Image.Image | None = None
    ) -> None:
        """Original (on disk when this returns) + thumbnail; ``image`` is ``data`` already
        decoded and upright, when the caller has it, so it is not decoded a second time."""

    def read(self, blob_id: str) -> bytes:
        """The original bytes; ``FileNotFoundError`` if absent."""

    def thumbnail(self, blob_id: str) -> bytes:
        """A small JPEG of the image; ``FileNotFoundError`` if absent."""

    def delete(self, blob_id: str) -> None: ...

    def total_bytes(self) -> int: ...


@dataclass(slots=True)
class ImageInput:
    data: bytes
    source: str
    caption: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Set by a caller that already knows the item is bad (e.g. too large while reading it).
    error: ClipsearchError | None = None


@dataclass(slots=True)
class ItemResult:
    id: str | None
    source: str
    status: Status
    error: ClipsearchError | None = None


@dataclass(slots=True)
class _Work:
    """One upload on its way through the pipeline."""

    index: int
    input: ImageInput
    id: str
    caption: str
    info: ImageInfo | None = None
    vector: Any = None
    caption_vector: Any = None
    blob_is_new: bool = False


class ImageService:
    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        store: VectorStore,
        blobs: Blobs,
        collections: Collections,
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._store = store
        self._blobs = blobs
        self._collections = collections

    # --- write -------------------------------------------------------------------------
    async def store_images(self, collection: str, items: Sequence[ImageInput]) -> list[ItemResult]:
        """Store ``items``; one result per item, in order."""
        cfg = self._settings
        if not items:
            raise InvalidRequest("no files given", code="no_files")
        if len(items) > cfg.max_files_per_request:
            raise InvalidRequest(
                f"{len(items)} files, more than the limit of {cfg.max_files_per_request}",
                code="too_many_files",
                details={"max_files_per_request": cfg.max_files_per_request},
            )
        group = await self._collections.for_write(collection)
        results: list[ItemResult | None] = [None] * len(items)
        work: list[_Work] = []
        seen: set[str] = set()

        def fail(w: _Work, err: ClipsearchError) -> None:
            results[w.index] = ItemResult(w.id, w.input.source, "failed", err)

        for i, item in enumerate(items):
            try:
                if item.error is not None:
                    raise item.error
                check_size(item.data, max_bytes=cfg.max_upload_bytes)
                check_metadata(item.metadata)
                caption = ""
                if item.caption.strip():
                    caption = check_text(item.caption, max_chars=cfg.max_text_chars, what="caption")
            except ClipsearchError as err:
                results[i] = ItemResult(None, item.source, "failed", err)
                continue
            image_id = image_id_of(item.data)
            if image_id in seen:  # the same picture twice in one request
                results[i] = ItemResult(image_id, item.source, "duplicate")
                continue
            seen.add(image_id)
            work.append(_Work(i, item, image_id, caption))

        existing = await run_sync(self._store.existing_ids, group, "images", [w.id for w in work])
        pending: list[_Work] = []
        for w in work:
            if w.id in existing:
                results[w.index] = ItemResult(w.id, w.input.source, "duplicate")
                continue
            try:
                w.info = await run_sync(inspect_image, w.input.data, max_pixels=cfg.max_pixels)
            except ClipsearchError as err:
                fail(w, err)
                continue
            pending.append(w)

        pending = await self._encode(pending, fail)
        pending = await self._write(group, pending, fail)
        for w in pending:
            results[w.index] = ItemResult(w.id, w.input.source, "stored")
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def _encode(
        self, work: list[_Work], fail: Callable[[_Work, ClipsearchError], None]
    ) -> list[_Work]:
        """Image vectors and caption vectors, each in one encoder call; on a batch failure
        the items are retried one by one so a single bad item only fails itself."""
        enc = self._encoder

        async def images(batch: list[_Work]) -> Vectors:
            return await enc.encode_images([w.input.data for w in batch])

        async def captions(batch: list[_Work]) -> Vectors:
            return await enc.encode_texts([w.caption for w in batch])

        ok = await _encode_each(work, images, "vector", fail)
        with_caption = [w for w in ok if w.caption]
        good = {id(w) for w in await _encode_each(with_caption, captions, "caption_vector", fail)}
        return [w for w in ok if not w.caption or id(w) in good]

    async def _write(
        self, group: str, work: list[_Work], fail: Callable[[_Work, ClipsearchError], None]
    ) -> list[_Work]:
        now = int(time.time())
        blobbed: list[_Work] = []
        for w in work:
            assert w.info is not None
            try:
                w.blob_is_new = not await run_sync(self._blobs.exists, w.id)
                if w.blob_is_new:
                    await run_sync(self._blobs.put, w.id, w.input.data, w.info.content_type)
            except Exception as exc:
                log.warning("blob write failed for %s: %s", w.id, exc)
                await self._undo(group, w, None)  # e.g. original written, thumbnail not
                fail(w, Unavailable(f"could not store the file: {exc}", code="blob_write_failed"))
                continue
            blobbed.append(w)

        texts = {
            w.id: TextRecord(
                id=text_id_of(w.caption, w.id),
                vector=w.caption_vector,
                text=w.caption,
                image_id=w.id,
                metadata=w.input.metadata,
                created_at=now,
            )
            for w in blobbed
            if w.caption
        }
        failed_texts = await upsert_each(
            list(texts.values()), lambda rs: run_sync(self._store.upsert_texts, group, rs)
        )
        ready: list[_Work] = []
        for w in blobbed:
            if w.id in texts and texts[w.id].id in failed_texts:
                await self._undo(group, w, None)
                fail(
                    w, Unavailable("could not store the caption vector", code="store_write_failed")
                )
            else:
                ready.append(w)

        images = {
            w.id: ImageRecord(
                id=w.id,
                vector=w.vector,
                source=w.input.source,
                content_type=w.info.content_type if w.info else "",
                width=w.info.width if w.info else 0,
                height=w.info.height if w.info else 0,
                caption=w.caption,
                metadata=w.input.metadata,
                created_at=now,
            )
            for w in ready
        }
        failed_images = await upsert_each(
            list(images.values()), lambda rs: run_sync(self._store.upsert_images, group, rs)
        )
        stored: list[_Work] = []
        for w in ready:
            if w.id in failed_images:
                await self._undo(group, w, texts.get(w.id))
                reason = failed_images[w.id]
                fail(
                    w,
                    Unavailable(f"could not store the image: {reason}", code="store_write_failed"),
                )
            else:
                stored.append(w)
        return stored

    async def _undo(self, group: str, w: _Work, text: TextRecord | None) -> None:
        """Remove what this item wrote before its failure (best effort, logged)."""
        try:
            if text is not None:
                await run_sync(self._store.delete, group, "texts", [text.id])
            if w.blob_is_new:
                await run_sync(self._blobs.delete, w.id)
        except Exception as exc:
            log.error("could not undo a partial write of %s: %s", w.id, exc)

    # --- read / delete -----------------------------------------------------------------
    async def get_image(self, collection: str, image_id: str) -> dict[str, Any]:
        group = await self._collections.for_read(collection)
        rows = await run_sync(self._store.get, group, "images", [image_id])
        if not rows:
            raise NotFoundError(f"image {image_id!r} not found", code="image_not_found")
        return rows[0]

    async def delete_image(self, collection: str, image_id: str) -> int:
        """Delete the image, its linked texts, then its blob; returns the texts removed.
        The vector goes first so the image stops being found before its file disappears."""
        group = await self._collections.for_read(collection)
        await self.get_image(group, image_id)
        await run_sync(self._store.delete, group, "images", [image_id])
        removed = await run_sync(self._store.delete_texts_of_image, group, image_id)
        if not await self._blob_used_elsewhere(group, image_id):
            await run_sync(self._blobs.delete, image_id)
        return removed

    async def _blob_used_elsewhere(self, group: str, image_id: str) -> bool:
        # Blobs are content-addressed and shared by collections: keep one still referenced.
        for other in await run_sync(self._store.list_groups):
            if other == group:
                continue
            found: set[str] = await run_sync(self._store.existing_ids, other, "images", [image_id])
            if found:
                return True
        return False


async def _encode_each(
    work: list[_Work],
    encode: Callable[[list[_Work]], Awaitable[Vectors]],
    attr: str,
    fail: Callable[[_Work, ClipsearchError], None],
) -> list[_Work]:
    if not work:
        return []
    try:
        vectors = await encode(work)
        for w, v in zip(work, vectors, strict=True):
            setattr(w, attr, v)
        return work
    except (EncoderError, ImageDecodeError) as exc:
        if len(work) == 1:
            fail(work[0], _encoder_error(exc))
            return []
    ok: list[_Work] = []
    for w in work:
        ok.extend(await _encode_each([w], encode, attr, fail))
    return ok


def _encoder_error(exc: Exception) -> ClipsearchError:
    if isinstance(exc, ImageDecodeError):
        return InvalidRequest(str(exc), code="invalid_image")
    return Unavailable(f"encoder failed: {exc}", code="encoder_unavailable")


__all__ = ["Blobs", "ImageInput", "ImageService", "ItemResult"]
