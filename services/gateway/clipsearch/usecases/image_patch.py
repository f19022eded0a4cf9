"""Changing a stored picture: ``PATCH /v1/images/{id}``, and an upload of a picture that
is already stored with a caption or metadata it does not have yet.

What a patch means (all parts optional, applied together, written by
:meth:`~clipsearch.usecases.picture_writes.PictureWriter.update_records`):

- ``metadata`` with ``metadata_mode``: ``merge`` (the default: the given top-level keys
  replace theirs, the other keys stay) or ``replace`` (the given object is the new
  metadata). The picture's caption texts get the same change, so text search filters keep
  seeing what image search sees. The result must fit the metadata limits.
- ``caption``: the new main caption (the image's ``caption`` field). Its text is linked
  (encoded if new); the previous main caption's text is removed, unless ``add_captions``
  names it.
- ``add_captions``: more caption texts, linked by ``image_id`` and encoded with the
  collection's encoder; those already linked are left as they are.
- ``remove_captions``: caption texts to delete (by their text); removing the main caption
  makes the first remaining caption (oldest first) the main one, or none.

The image vector is never touched. A patch that changes nothing writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from clipsearch.core.config import Settings
from clipsearch.core.errors import InvalidRequest, NotFoundError, Unavailable
from clipsearch.encoder.protocol import Encoder, EncoderError
from clipsearch.store.protocol import TextRecord, VectorStore
from clipsearch.usecases.collections import Handle
from clipsearch.usecases.common import check_text, run_sync, text_id_of
from clipsearch.usecases.metadata import MetadataLimits, check_metadata
from clipsearch.usecases.picture_writes import PictureChange, PictureWriter

MetadataMode = Literal["merge", "replace"]


@dataclass(slots=True)
class ImagePatch:
    """The parts of a change to a stored picture (``None`` / empty: leave as is)."""

    metadata: dict[str, Any] | None = None
    metadata_mode: MetadataMode = "merge"
    caption: str | None = None
    add_captions: list[str] = field(default_factory=list)
    remove_captions: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return (
            self.metadata is None
            and self.caption is None
            and not self.add_captions
            and not self.remove_captions
        )


def changed_metadata(
    old: dict[str, Any], given: dict[str, Any] | None, mode: MetadataMode
) -> dict[str, Any]:
    """``old`` after a patch of ``given`` in ``mode`` (``None``: unchanged)."""
    if given is None:
        return old
    return dict(given) if mode == "replace" else {**old, **given}


def _captions(texts: list[str], cfg: Settings) -> list[str]:
    """Normalised, each once, in order; :class:`InvalidRequest` for an empty or long one."""
    out = [check_text(t, max_chars=cfg.max_text_chars, what="caption") for t in texts]
    return list(dict.fromkeys(out))


def linked_captions(texts: list[dict[str, Any]], main: str) -> list[str]:
    """The caption texts of a picture: the main caption first, then oldest first."""
    ordered = sorted(texts, key=lambda t: (int(t.get("created_at") or 0), str(t["text"])))
    captions = [str(t["text"]) for t in ordered]
    if main in captions:
        captions.remove(main)
        captions.insert(0, main)
    return captions


class ImagePatcher:
    """Plans a change to a stored picture, encodes its new captions and writes it."""

    def __init__(
        self, settings: Settings, encoder: Encoder, store: VectorStore, writer: PictureWriter
    ) -> None:
        self._settings = settings
        self._encoder = encoder
        self._store = store
        self._writer = writer

    async def current(
        self, group: str, image_id: str, *, with_vectors: bool = False
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The stored image row and its linked text rows; 404 ``image_not_found``."""
        rows = await run_sync(
            self._store.get, group, "images", [image_id], with_vectors=with_vectors
        )
        if not rows:
            raise NotFoundError(f"image {image_id!r} not found", code="image_not_found")
        ids = await run_sync(self._store.text_ids_of_image, group, image_id)
        texts = await run_sync(self._store.get, group, "texts", ids, with_vectors=with_vectors)
        return rows[0], texts

    def check(self, patch: ImagePatch) -> ImagePatch:
        """``patch`` with its captions normalised; :class:`InvalidRequest` when it is empty,
        has too many or bad captions, names a caption to add and remove, or bad metadata."""
        cfg = self._settings
        if patch.is_empty():
            raise InvalidRequest(
                "nothing to change: give metadata, caption, add_captions or remove_captions",
                code="empty_patch",
            )
        if len(patch.add_captions) + len(patch.remove_captions) > cfg.max_texts_per_request:
            raise InvalidRequest(
                f"more than {cfg.max_texts_per_request} captions to add and remove",
                code="too_many_texts",
                details={"max_texts_per_request": cfg.max_texts_per_request},
            )
        if patch.metadata is not None:
            check_metadata(patch.metadata, MetadataLimits.of(cfg))
        caption = None
        if patch.caption is not None:
            caption = check_text(patch.caption, max_chars=cfg.max_text_chars, what="caption")
        add, remove = _captions(patch.add_captions, cfg), _captions(patch.remove_captions, cfg)
        both = set(remove) & ({*add, caption} - {None})
        if both:
            raise InvalidRequest(
                "a caption cannot be added and removed at once",
                code="conflicting_captions",
                details={"captions": sorted(str(c) for c in both)},
            )
        return ImagePatch(patch.metadata, patch.metadata_mode, caption, add, remove)

    async def add_new(
        self,
        group: str,
        image_id: str,
        captions: list[str],
        metadata: dict[str, Any],
        *,
        handle: Handle | None = None,
    ) -> bool:
        """A picture uploaded again (an upload, an ingest item): ``captions`` it lacks are
        added and ``metadata`` merged; True when that changed it. Blank captions are
        skipped; a bad one is :class:`InvalidRequest`."""
        cfg = self._settings
        texts = [
            check_text(c, max_chars=cfg.max_text_chars, what="caption")
            for c in captions
            if c.strip()
        ]
        if not texts and not metadata:
            return False
        patch = ImagePatch(metadata=metadata or None, add_captions=list(dict.fromkeys(texts)))
        changed, _ = await self.apply(group, image_id, patch, handle=handle)
        return changed

    async def apply(
        self, group: str, image_id: str, patch: ImagePatch, *, handle: Handle | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Apply a checked ``patch``: ``(changed, the image row with its captions)``; new
        captions are encoded by the collection's model (``handle``), and during a migration
        the change is written to the shadow pair too. 404 ``caption_not_found`` when a
        caption to remove is not linked to the image."""
        row, texts = await self.current(group, image_id, with_vectors=True)
        cfg = self._settings
        by_text = {str(t["text"]): t for t in texts}
        missing = [c for c in patch.remove_captions if c not in by_text]
        if missing:
            raise NotFoundError(
                f"image {image_id!r} has no caption {missing[0]!r}",
                code="caption_not_found",
                details={"captions": missing},
            )
        old_md = dict(row.get("metadata") or {})
        new_md = changed_metadata(old_md, patch.metadata, patch.metadata_mode)
        if patch.metadata is not None:
            check_metadata(new_md, MetadataLimits.of(cfg))  # the merge is what is stored
        main = str(row.get("caption") or "")
        remove = set(patch.remove_captions)
        add = list(patch.add_captions)
        if patch.caption is not None:
            if patch.caption != main and main in by_text and main not in add:
                remove.add(main)
            add.insert(0, patch.caption)
            main = patch.caption
        kept = [c for c in linked_captions(texts, main) if c not in remove]
        to_add = [c for c in dict.fromkeys(add) if c not in by_text]
        if main in remove or (not main and (kept or to_add)):
            main = (kept + to_add)[0] if kept or to_add else ""
        relabel = []
        for c in kept:
            t_md = changed_metadata(
                dict(by_text[c].get("metadata") or {}), patch.metadata, patch.metadata_mode
            )
            if t_md != (by_text[c].get("metadata") or {}):
                relabel.append((by_text[c], t_md))
        changed = bool(to_add or remove or relabel or new_md != old_md)
        changed = changed or main != str(row.get("caption") or "")
        if changed:
            enc = handle.encoder if handle is not None else self._encoder
            records = await self._records(image_id, to_add, new_md, enc)
            records += [_relabelled(t, md) for t, md in relabel]
            change = PictureChange(
                image={**row, "caption": main, "metadata": new_md},
                texts=records,
                before=[t for t, _ in relabel],
                remove=[str(by_text[c]["id"]) for c in sorted(remove)],
            )
            await self._writer.update_records(group, change)
            if handle is not None:
                await self._writer.mirror_change(group, handle.shadow_encoder, change)
            row = {**row, "caption": main, "metadata": new_md}
        out = {k: v for k, v in row.items() if k != "vector"}
        out["captions"] = [main] if main else []
        out["captions"] += [c for c in kept + to_add if c != main]
        return changed, out

    async def _records(
        self, image_id: str, captions: list[str], metadata: dict[str, Any], encoder: Encoder
    ) -> list[TextRecord]:
        if not captions:
            return []
        try:
            vectors = await encoder.encode_texts(captions)
        except EncoderError as exc:
            raise Unavailable(f"encoder failed: {exc}", code="encoder_unavailable") from exc
        return [
            TextRecord(
                id=text_id_of(c, image_id), vector=v, text=c, image_id=image_id, metadata=metadata
            )
            for c, v in zip(captions, vectors, strict=True)
        ]


def _relabelled(row: dict[str, Any], metadata: dict[str, Any]) -> TextRecord:
    return TextRecord(
        id=str(row["id"]),
        vector=row["vector"],
        text=str(row["text"]),
        image_id=str(row.get("image_id") or ""),
        metadata=metadata,
        created_at=int(row.get("created_at") or 0),
    )


__all__ = ["ImagePatch", "ImagePatcher", "MetadataMode", "changed_metadata", "linked_captions"]
