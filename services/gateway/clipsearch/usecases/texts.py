"""Text use-cases: store a text-only corpus (for image->text and text->text), change a
text, delete.

A text's id is the hash of its normalised text (and of its image, for a caption:
:func:`~clipsearch.usecases.common.text_id_of`), so the same text is stored once. A patch
with a new text therefore gives the record a new id (and a new vector): the old record is
replaced by the new one, and the answer names both. Were the id kept, a later upload of
the new text would not be recognised as a duplicate, and one of the old text would be
stored again. A caption's text is changed through ``PATCH /v1/images/{id}`` (which keeps
the image's main caption in step); its metadata may be changed here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from clipsearch.core.config import Settings
from clipsearch.core.errors import ClipsearchError, InvalidRequest, NotFoundError, Unavailable
from clipsearch.encoder.protocol import Encoder, EncoderError
from clipsearch.store.protocol import TextRecord, VectorStore
from clipsearch.usecases.collections import Collections, Handle
from clipsearch.usecases.common import (
    check_text,
    each_alone_on_failure,
    run_sync,
    text_id_of,
)
from clipsearch.usecases.image_patch import MetadataMode, changed_metadata
from clipsearch.usecases.images import ItemResult
from clipsearch.usecases.metadata import MetadataLimits, check_metadata

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TextInput:
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


class TextService:
    def __init__(
        self, settings: Settings, encoder: Encoder, store: VectorStore, collections: Collections
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._store = store
        self._collections = collections

    async def store_texts(self, collection: str, items: Sequence[TextInput]) -> list[ItemResult]:
        """Store ``items`` (one encoder call for all new texts); one result per item.
        ``source`` of a result is the normalised text."""
        cfg = self._settings
        if not items:
            raise InvalidRequest("no texts given", code="no_texts")
        if len(items) > cfg.max_texts_per_request:
            raise InvalidRequest(
                f"{len(items)} texts, more than the limit of {cfg.max_texts_per_request}",
                code="too_many_texts",
                details={"max_texts_per_request": cfg.max_texts_per_request},
            )
        # Validate everything first: a request with a bad text writes nothing at all.
        normalised: list[str] = []
        for i, item in enumerate(items):
            try:
                normalised.append(check_text(item.text, max_chars=cfg.max_text_chars))
                check_metadata(item.metadata, MetadataLimits.of(cfg))
            except ClipsearchError as err:
                err.details = {"index": i, **(err.details or {})}
                raise
        handle = await self._collections.resolve_for_write(collection)
        group = handle.group
        ids = [text_id_of(t) for t in normalised]
        existing = await run_sync(self._store.existing_ids, group, "texts", ids)
        results: list[ItemResult] = []
        new: dict[str, int] = {}
        for i, (tid, text) in enumerate(zip(ids, normalised, strict=True)):
            if tid in existing or tid in new:
                results.append(ItemResult(tid, text, "duplicate"))
            else:
                new[tid] = i
                results.append(ItemResult(tid, text, "stored"))
        if not new:
            return results
        wanted = [normalised[i] for i in new.values()]
        try:
            vectors = await handle.encoder.encode_texts(wanted)
        except EncoderError as exc:
            raise Unavailable(f"encoder failed: {exc}", code="encoder_unavailable") from exc
        now = int(time.time())
        records = [
            TextRecord(
                id=tid, vector=vec, text=normalised[i], metadata=items[i].metadata, created_at=now
            )
            for (tid, i), vec in zip(new.items(), vectors, strict=True)
        ]
        store, fp = self._store, handle.info.fingerprint
        failed = await each_alone_on_failure(
            records, lambda rs: run_sync(lambda: store.upsert_texts(group, rs, fingerprint=fp))
        )
        gone = {r.id for r, _ in failed}
        await self._mirror(handle, [r for r in records if r.id not in gone])
        for record, reason in failed:
            tid = record.id
            results[new[tid]] = ItemResult(
                tid,
                normalised[new[tid]],
                "failed",
                Unavailable(f"could not store the text: {reason}", code="store_write_failed"),
            )
        return results

    async def _mirror(self, handle: Handle, records: list[TextRecord]) -> None:
        """During a migration: the texts just stored, encoded by the shadow pair's model
        and written there too (best effort: the migration's catch-up copies what is lost)."""
        enc = handle.shadow_encoder
        if enc is None or not records:
            return
        try:
            vectors = await enc.encode_texts([r.text for r in records])
            copies = [replace(r, vector=v) for r, v in zip(records, vectors, strict=True)]
            store, fp = self._store, enc.fingerprint
            await run_sync(lambda: store.upsert_texts(handle.group, copies, fingerprint=fp))
        except Exception as exc:
            log.warning("mirror write of texts to the shadow pair failed: %s", exc)

    async def delete_text(self, collection: str, text_id: str) -> None:
        group = await self._collections.for_read(collection)
        if not await run_sync(self._store.existing_ids, group, "texts", [text_id]):
            raise NotFoundError(f"text {text_id!r} not found", code="text_not_found")
        await run_sync(self._store.delete, group, "texts", [text_id])

    async def update_text(
        self,
        collection: str,
        text_id: str,
        *,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        metadata_mode: MetadataMode = "merge",
    ) -> dict[str, Any]:
        """Change a text and/or its metadata; the stored row (with ``replaced_id`` when a
        new text gave it a new id). 422 ``empty_patch``, ``invalid_metadata``,
        ``text_too_long``, ``caption_text``; 404 ``text_not_found``."""
        cfg = self._settings
        if text is None and metadata is None:
            raise InvalidRequest("nothing to change: give text or metadata", code="empty_patch")
        limits = MetadataLimits.of(cfg)
        if metadata is not None:
            check_metadata(metadata, limits)
        norm = None if text is None else check_text(text, max_chars=cfg.max_text_chars)
        handle = await self._collections.resolve(collection)
        group = handle.group
        rows = await run_sync(self._store.get, group, "texts", [text_id], with_vectors=True)
        if not rows:
            raise NotFoundError(f"text {text_id!r} not found", code="text_not_found")
        row = rows[0]
        image_id = str(row.get("image_id") or "")
        old_md = dict(row.get("metadata") or {})
        new_md = check_metadata(changed_metadata(old_md, metadata, metadata_mode), limits)
        new_text = norm if norm is not None else str(row["text"])
        if new_text != row["text"] and image_id:
            raise InvalidRequest(
                "this text is a caption of an image: change it with PATCH /v1/images/{id} "
                "(caption, add_captions, remove_captions)",
                code="caption_text",
                details={"image_id": image_id},
            )
        new_id = text_id_of(new_text, image_id)
        vector = row["vector"]
        if new_id != text_id:
            try:
                vector = (await handle.encoder.encode_texts([new_text]))[0]
            except EncoderError as exc:
                raise Unavailable(f"encoder failed: {exc}", code="encoder_unavailable") from exc
        out = {k: v for k, v in row.items() if k != "vector"}
        out.update(id=new_id, text=new_text, metadata=new_md)
        if new_id == text_id and new_md == old_md:
            return out  # nothing changes: nothing to write
        record = TextRecord(
            id=new_id,
            vector=vector,
            text=new_text,
            image_id=image_id,
            metadata=new_md,
            created_at=int(row.get("created_at") or 0) if new_id == text_id else int(time.time()),
        )
        store, fp = self._store, handle.info.fingerprint
        await run_sync(lambda: store.upsert_texts(group, [record], fingerprint=fp))
        await self._mirror(handle, [record])  # during a migration, the shadow pair too
        if new_id != text_id:
            # The new record first: a failure here leaves the old text, never neither.
            await run_sync(self._store.delete, group, "texts", [text_id])
            out["replaced_id"] = text_id
            out["created_at"] = record.created_at
        return out
