"""Image use-cases: store uploads (vector + blob + caption text), read and delete them.

Per upload: validate -> decode once (the picture gives the thumbnail and the model input)
-> blob -> encode (all uploads in one call) -> caption texts -> image vector, through
:mod:`clipsearch.usecases.picture_writes`, which undoes the writes of an item that fails.
The image vector goes last, so an image is only searchable once everything it points to
exists. One item's failure never costs the others their place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from clipsearch.core.config import Settings
from clipsearch.core.errors import ClipsearchError, InvalidRequest, NotFoundError, Unavailable
from clipsearch.encoder.protocol import (
    Encoder,
    EncoderError,
    ImageDecodeError,
    PixelTensor,
    Vectors,
)
from clipsearch.store.protocol import Filter, VectorStore
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.collections import Collections, Handle
from clipsearch.usecases.common import check_filter, check_text, image_id_of, run_sync, to_the_end
from clipsearch.usecases.image_patch import ImagePatch, ImagePatcher, linked_captions
from clipsearch.usecases.imaging import check_size, encode_pictures, inspect_image
from clipsearch.usecases.metadata import MetadataLimits, check_metadata
from clipsearch.usecases.picture_writes import NewPicture, PictureWriter
from clipsearch.usecases.pixel_budget import shared_budget
from clipsearch.usecases.write_journal import WriteJournal

log = logging.getLogger(__name__)
Status = Literal["stored", "updated", "duplicate", "failed"]
DELETE_BATCH = 500  # pictures per page of a delete by filter


@dataclass(slots=True)
class ImageInput:
    """One uploaded file with its optional caption and metadata."""

    data: bytes
    source: str
    caption: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Set by a caller that already knows the item is bad (e.g. too large while reading it).
    error: ClipsearchError | None = None


@dataclass(slots=True)
class ItemResult:
    """What became of one input: ``stored``, ``updated`` (a picture already stored got
    the caption or metadata it brought), ``duplicate`` (nothing new) or ``failed`` (with
    the error)."""

    id: str | None
    source: str
    status: Status
    error: ClipsearchError | None = None


@dataclass(slots=True)
class Deleted:
    """What a delete by filter removed: pictures and the texts linked to them."""

    images: int = 0
    texts: int = 0


@dataclass(slots=True)
class _Work:
    """One upload on its way through the pipeline."""

    index: int
    picture: NewPicture
    # The model input made from the decoded picture, when the encoder has a pixel path.
    pixels: PixelTensor | None = None


class ImageService:
    """Store, read and delete images of a collection (uploads; jobs: :mod:`clipsearch.jobs`)."""

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
        journal = WriteJournal(settings.data_dir / "pending-writes")
        self._writer = PictureWriter(store, blobs, journal)
        self._patcher = ImagePatcher(settings, encoder, store, self._writer)

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
        handle = await self._collections.resolve_for_write(collection)
        group, enc = handle.group, handle.encoder
        results: list[ItemResult | None] = [None] * len(items)
        fresh = self._check(items, results)
        existing = await run_sync(self._store.existing_ids, group, "images", list(fresh))
        work: list[_Work] = []
        for image_id, (i, captions) in fresh.items():
            if image_id in existing:
                results[i] = await self._update_existing(handle, image_id, captions, items[i])
            elif isinstance(
                got := await self._decode_and_keep(i, image_id, captions, items[i], enc), _Work
            ):
                work.append(got)
            else:
                results[i] = got

        failed: list[_Work] = []

        def fail(w: _Work, err: ClipsearchError) -> None:
            results[w.index] = ItemResult(w.picture.id, w.picture.source, "failed", err)
            failed.append(w)

        work = await self._encode(work, fail, enc)
        await self._writer.discard([w.picture for w in failed])  # their blobs were written
        of = {id(w.picture): w for w in work}
        pictures = [w.picture for w in work]
        fp = handle.info.fingerprint
        failures = await self._writer.store_records(group, pictures, fingerprint=fp)
        for p, problem in failures:
            fail(of[id(p)], problem)
        gone = {id(p) for p, _ in failures}
        # During a migration the shadow pair gets them too, encoded by its model.
        stored = [p for p in pictures if id(p) not in gone]
        await self._writer.mirror(group, handle.shadow_encoder, stored)
        for w in work:
            if results[w.index] is None:
                results[w.index] = ItemResult(w.picture.id, w.picture.source, "stored")
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    async def _update_existing(
        self, handle: Handle, image_id: str, captions: list[str], item: ImageInput
    ) -> ItemResult:
        """A picture already stored: its new caption is added and its metadata merged
        (``updated``); nothing new is a ``duplicate``."""
        try:
            changed = await self._patcher.add_new(
                handle.group, image_id, captions, item.metadata, handle=handle
            )
        except ClipsearchError as err:
            return ItemResult(image_id, item.source, "failed", err)
        return ItemResult(image_id, item.source, "updated" if changed else "duplicate")

    async def update_image(
        self, collection: str, image_id: str, patch: ImagePatch
    ) -> dict[str, Any]:
        """Apply ``patch`` (see :mod:`clipsearch.usecases.image_patch`); the updated record
        with its ``captions``. 422 for a bad patch, 404 for an unknown image or caption."""
        checked = self._patcher.check(patch)
        handle = await self._collections.resolve(collection)  # 404, never created
        _, row = await self._patcher.apply(handle.group, image_id, checked, handle=handle)
        return row

    def _check(
        self, items: Sequence[ImageInput], results: list[ItemResult | None]
    ) -> dict[str, tuple[int, list[str]]]:
        """Per-item checks that need no decoding; the first copy of each new picture by id,
        with its index and normalised captions (failures and copies go to ``results``)."""
        cfg = self._settings
        fresh: dict[str, tuple[int, list[str]]] = {}
        for i, item in enumerate(items):
            try:
                if item.error is not None:
                    raise item.error
                check_size(item.data, max_bytes=cfg.max_upload_bytes)
                check_metadata(item.metadata, MetadataLimits.of(cfg))
                captions = []
                if item.caption.strip():
                    captions = [
                        check_text(item.caption, max_chars=cfg.max_text_chars, what="caption")
                    ]
            except ClipsearchError as err:
                results[i] = ItemResult(None, item.source, "failed", err)
                continue
            image_id = image_id_of(item.data)
            if image_id in fresh:  # the same picture twice in one request
                results[i] = ItemResult(image_id, item.source, "duplicate")
            else:
                fresh[image_id] = (i, captions)
        return fresh

    async def _decode_and_keep(
        self, index: int, image_id: str, captions: list[str], item: ImageInput, enc: Encoder
    ) -> _Work | ItemResult:
        """Decode the upload (once) and write its blob from that picture, so that only the
        model input stays in memory until the batch is encoded (never all the pictures of
        a request at once). The failed result when either step fails."""
        try:
            seen = await run_sync(
                inspect_image,
                item.data,
                max_pixels=self._settings.max_pixels,
                budget=shared_budget(self._settings.decode_budget_mpx),
                encoder=enc,
            )
        except ClipsearchError as err:
            return ItemResult(image_id, item.source, "failed", err)
        info = seen.info
        picture = NewPicture(
            id=image_id,
            data=item.data,
            source=item.source,
            content_type=info.content_type,
            width=info.width,
            height=info.height,
            captions=captions,
            metadata=item.metadata,
        )
        for _, problem in await self._writer.store_blobs([picture], [seen.image]):
            return ItemResult(image_id, item.source, "failed", problem)
        return _Work(index, picture, seen.pixels)

    async def _encode(
        self, work: list[_Work], fail: Callable[[_Work, ClipsearchError], None], enc: Encoder
    ) -> list[_Work]:
        """Image vectors and caption vectors (the collection's model ``enc``), each in one
        encoder call; on a batch failure the items are retried one by one so a single bad
        item only fails itself."""

        async def images(batch: list[_Work]) -> list[Vectors]:
            data = [w.picture.data for w in batch]
            return list(await encode_pictures(enc, data, [w.pixels for w in batch]))

        async def captions(batch: list[_Work]) -> list[Vectors]:
            vectors = await enc.encode_texts([c for w in batch for c in w.picture.captions])
            out: list[Vectors] = []
            k = 0
            for w in batch:  # the rows of one picture's captions as one entry
                n = len(w.picture.captions)
                out.append(vectors[k : k + n])
                k += n
            return out

        def set_vector(w: _Work, v: Vectors) -> None:
            w.picture.vector = v

        def set_captions(w: _Work, v: Vectors) -> None:
            w.picture.caption_vectors = list(v)

        ok = await _encode_each(work, images, set_vector, fail)
        with_caption = [w for w in ok if w.picture.captions]
        good = {id(w) for w in await _encode_each(with_caption, captions, set_captions, fail)}
        return [w for w in ok if not w.picture.captions or id(w) in good]

    # --- read / delete -----------------------------------------------------------------
    async def recover_interrupted_writes(self) -> int:
        """At start-up, before serving: no caption texts of half-written uploads remain."""
        return await self._writer.recover()

    async def get_image(
        self, collection: str, image_id: str, *, with_captions: bool = False
    ) -> dict[str, Any]:
        """The stored row (no vector); with ``captions`` (main first) when asked."""
        group = await self._collections.for_read(collection)
        if with_captions:
            row, texts = await self._patcher.current(group, image_id)
            main = str(row.get("caption") or "")
            return {**row, "captions": linked_captions(texts, main)}
        rows = await run_sync(self._store.get, group, "images", [image_id])
        if not rows:
            raise NotFoundError(f"image {image_id!r} not found", code="image_not_found")
        return rows[0]

    async def delete_image(self, collection: str, image_id: str) -> int:
        """Delete the image, its linked texts, then its blob; returns the texts removed."""
        group = await self._collections.for_read(collection)
        await self.get_image(group, image_id)
        return await self._delete_pictures(group, [image_id])

    async def delete_images_matching(self, collection: str, filters: Filter | None) -> Deleted:
        """Delete every image whose metadata matches ``filters`` (refused when empty: that
        would be the whole collection), each exactly as :meth:`delete_image` does. Runs to
        the end even if the caller goes away, so no picture is left half-deleted."""
        wanted = check_filter(filters)
        if not wanted:
            raise InvalidRequest(
                "a non-empty filter is required to delete by filter", code="filter_required"
            )
        group = await self._collections.for_read(collection)

        async def run() -> Deleted:
            done = Deleted()
            after = ""
            while True:
                # The next page starts after the last id seen, deleted or not: a picture
                # that cannot be deleted is never retried forever.
                page = await run_sync(
                    self._store.scan,
                    group,
                    "images",
                    after=after,
                    limit=DELETE_BATCH,
                    filter=wanted,
                )
                ids = [str(r["id"]) for r in page.rows]
                if ids:
                    done.texts += await self._delete_pictures(group, ids)
                    done.images += len(ids)
                if page.next_after is None:
                    return done
                after = page.next_after

        return await to_the_end(run())

    async def _delete_pictures(self, group: str, ids: list[str]) -> int:
        """The one delete of pictures: vectors, linked texts, then the blobs no other
        collection holds; returns the texts removed. The vectors go first so an image
        stops being found before its file disappears."""
        await run_sync(self._store.delete, group, "images", ids)
        linked = await run_sync(self._store.texts_of_images, group, ids)
        removed = await run_sync(self._store.delete, group, "texts", [str(t["id"]) for t in linked])
        kept = await self._blobs_used_elsewhere(group, ids)
        for image_id in ids:
            if image_id not in kept:
                await run_sync(self._blobs.delete, image_id)
        return removed

    async def _blobs_used_elsewhere(self, group: str, ids: list[str]) -> set[str]:
        # Blobs are content-addressed and shared by collections: keep those still referenced.
        used: set[str] = set()
        for other in await run_sync(self._store.list_groups):
            if other != group:
                used |= await run_sync(self._store.existing_ids, other, "images", ids)
        return used


async def _encode_each(
    work: list[_Work],
    encode: Callable[[list[_Work]], Awaitable[list[Vectors]]],
    keep: Callable[[_Work, Vectors], None],
    fail: Callable[[_Work, ClipsearchError], None],
) -> list[_Work]:
    if not work:
        return []
    try:
        vectors = await encode(work)
        for w, v in zip(work, vectors, strict=True):
            keep(w, v)
        return work
    except (EncoderError, ImageDecodeError) as exc:
        if len(work) == 1:
            fail(work[0], _encoder_error(exc))
            return []
    ok: list[_Work] = []
    for w in work:
        ok.extend(await _encode_each([w], encode, keep, fail))
    return ok


def _encoder_error(exc: Exception) -> ClipsearchError:
    if isinstance(exc, ImageDecodeError):
        return exc
    return Unavailable(f"encoder failed: {exc}", code="encoder_unavailable")


__all__ = ["Deleted", "ImageInput", "ImageService", "ItemResult"]
