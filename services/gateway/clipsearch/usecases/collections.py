"""Maps a ``?collection=`` name to a store group: created on write, must exist on read."""

from __future__ import annotations

import asyncio

from clipsearch.core.errors import CollectionMismatch, UnknownCollection
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import GroupInfo, GroupMismatch, UnknownGroup, VectorStore
from clipsearch.usecases.common import check_collection_name, run_sync


def mismatch_message(name: str, info: GroupInfo | None, encoder: Encoder) -> str:
    """The refusal text, with the documented way out (a new collection)."""
    built = (
        f"model {info.model_name!r} (fingerprint {info.fingerprint}, dim {info.dim})"
        if info is not None
        else "another model"
    )
    return (
        f"collection {name!r} was built with {built}, but the encoder runs model "
        f"{encoder.model_name!r} (fingerprint {encoder.fingerprint}, dim {encoder.dim}); "
        "vectors of different models cannot be compared. Use a new collection name "
        "(?collection= or CLIPSEARCH_DEFAULT_COLLECTION) and ingest again."
    )


class Collections:
    """Checks collection groups once per process and remembers the good ones.

    Groups are never dropped by this gateway, so a group seen as ready stays ready.
    """

    def __init__(self, store: VectorStore, encoder: Encoder) -> None:
        self._store = store
        self._encoder = encoder
        self._ready: set[str] = set()
        self._lock = asyncio.Lock()

    async def for_write(self, name: str) -> str:
        """The group for a write: created with the encoder's model if missing."""
        check_collection_name(name)
        if name in self._ready:
            return name
        async with self._lock:
            if name not in self._ready:
                enc = self._encoder
                try:
                    await run_sync(
                        self._store.ensure_group,
                        name,
                        dim=enc.dim,
                        model_name=enc.model_name,
                        fingerprint=enc.fingerprint,
                    )
                except GroupMismatch as exc:
                    info = await self._info_or_none(name)
                    raise CollectionMismatch(
                        mismatch_message(name, info, enc), details={"store": str(exc)}
                    ) from exc
                self._ready.add(name)
        return name

    async def for_read(self, name: str) -> str:
        """The group for a read; :class:`UnknownCollection` if it does not exist, and
        :class:`CollectionMismatch` if another model built it (its vectors would be noise)."""
        check_collection_name(name)
        if name in self._ready:
            return name
        try:
            info = await run_sync(self._store.group_info, name)
        except UnknownGroup as exc:
            raise UnknownCollection(f"unknown collection {name!r}") from exc
        enc = self._encoder
        if info.fingerprint != enc.fingerprint or info.dim != enc.dim:
            raise CollectionMismatch(mismatch_message(name, info, enc))
        self._ready.add(name)
        return name

    async def _info_or_none(self, name: str) -> GroupInfo | None:
        try:
            return await run_sync(self._store.group_info, name)
        except Exception:  # only used to enrich an error message
            return None
