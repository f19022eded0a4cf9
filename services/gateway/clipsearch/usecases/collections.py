"""Collections: what a ``?collection=`` name resolves to (store group + the encoder of the
model that built it), and their lifecycle (list, create, drop).

Every place that encodes for a collection goes through :meth:`Collections.resolve` (reads)
or :meth:`Collections.resolve_for_write`, which answer a :class:`Handle`: the group, the
encoder whose fingerprint matches the group's record (the main model or one of
``CLIPSEARCH_EXTRA_MODELS``), and during a migration the shadow pair's encoder, so writes
land in both pairs.

Creation contract: a write to a missing collection creates it only for the default
collection or with ``CLIPSEARCH_AUTO_CREATE_COLLECTIONS=true``; otherwise it is a 404
``unknown_collection`` that says how to create it (``PUT /v1/collections/{name}``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from clipsearch.core.errors import (
    ClipsearchError,
    CollectionMismatch,
    InvalidRequest,
    UnknownCollection,
)
from clipsearch.encoder.protocol import Encoder, EncoderError
from clipsearch.encoder.registry import ModelRegistry
from clipsearch.store.milvus_groups import check_index
from clipsearch.store.protocol import (
    GroupInfo,
    GroupMismatch,
    IndexSpec,
    InvalidStoreRequest,
    UnknownGroup,
    VectorStore,
)
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.common import check_collection_name, run_sync

log = logging.getLogger(__name__)


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


def not_configured(name: str, info: GroupInfo, models: list[str]) -> CollectionMismatch:
    """409 ``model_not_configured``: the collection's model is not among this gateway's."""
    return CollectionMismatch(
        f"collection {name!r} was built with model {info.model_name!r} (fingerprint "
        f"{info.fingerprint}, dim {info.dim}), which this gateway does not have (it has "
        f"{', '.join(repr(m) for m in models)}). Add that model's folder to "
        "CLIPSEARCH_EXTRA_MODELS to serve it, migrate it (POST /v1/collections/"
        f"{name}/migrate), or use a new collection name and ingest again.",
        code="model_not_configured",
        details={
            "collection": name,
            "model_name": info.model_name,
            "fingerprint": info.fingerprint,
        },
    )


def unknown(name: str) -> UnknownCollection:
    return UnknownCollection(
        f"unknown collection {name!r}: create it with PUT /v1/collections/{name} (admin key), "
        "or set CLIPSEARCH_AUTO_CREATE_COLLECTIONS=true to let any write create it"
    )


@dataclass(frozen=True, slots=True)
class Handle:
    """A resolved collection: its store group and the encoder(s) its vectors need."""

    name: str
    encoder: Encoder
    info: GroupInfo
    # During a migration: the shadow pair's model (writes are encoded by both).
    shadow_encoder: Encoder | None = None

    @property
    def group(self) -> str:
        return self.name


@dataclass(slots=True)
class CollectionView:
    """What ``GET /v1/collections`` shows of one collection."""

    name: str
    model_name: str
    fingerprint: str
    dim: int
    index_type: str
    index_params: dict[str, Any]
    counts: dict[str, int]
    created_at: int
    servable: bool
    reason: str | None = None
    migration: dict[str, Any] | None = None
    min_score_auto: float | None = None


class Collections:
    """Resolves collections (cached per process) and creates, lists and drops them."""

    def __init__(
        self,
        store: VectorStore,
        encoder: Encoder,
        models: ModelRegistry | None = None,
        *,
        default: str = "default",
        auto_create: bool = True,
    ) -> None:
        self._store = store
        self._encoder = encoder
        self.models = models or ModelRegistry(encoder)
        self.default = default
        self.auto_create = auto_create
        self._handles: dict[str, Handle] = {}
        self._lock = asyncio.Lock()

    # --- resolution ------------------------------------------------------------------------
    def may_create(self, name: str) -> bool:
        """Whether a write may create ``name`` when it does not exist."""
        return name == self.default or self.auto_create

    async def resolve(self, name: str) -> Handle:
        """The handle of an existing collection: :class:`UnknownCollection` if there is
        none, :class:`CollectionMismatch` (``model_not_configured``) if its model is not
        one this gateway has."""
        check_collection_name(name)
        handle = self._handles.get(name)
        if handle is not None:
            return handle
        try:
            info = await run_sync(self._store.group_info, name, with_counts=False)
        except UnknownGroup as exc:
            raise unknown(name) from exc
        handle = await run_sync(self._handle, name, info)
        self._handles[name] = handle
        return handle

    def _handle(self, name: str, info: GroupInfo) -> Handle:
        enc = self.models.by_fingerprint(info.fingerprint)
        if enc is None or enc.dim != info.dim:
            raise not_configured(name, info, self.models.names())
        shadow = None
        if info.shadow is not None:
            shadow = self.models.by_fingerprint(info.shadow.fingerprint)
        return Handle(name, enc, info, shadow)

    async def resolve_for_write(self, name: str) -> Handle:
        """:meth:`resolve`, creating the collection with the main model when the contract
        allows it (:meth:`may_create`); else :class:`UnknownCollection` with the way out."""
        try:
            return await self.resolve(name)
        except UnknownCollection:
            if not self.may_create(name):
                raise
        async with self._lock:
            if name not in self._handles:
                await self._ensure(name, self._encoder, None)
        return await self.resolve(name)

    async def _ensure(self, name: str, enc: Encoder, index: IndexSpec | None) -> None:
        try:
            await run_sync(
                lambda: self._store.ensure_group(
                    name,
                    dim=enc.dim,
                    model_name=enc.model_name,
                    fingerprint=enc.fingerprint,
                    index=index,
                )
            )
        except GroupMismatch as exc:
            info = await self._info_or_none(name)
            raise CollectionMismatch(
                mismatch_message(name, info, enc), details={"store": str(exc)}
            ) from exc
        except InvalidStoreRequest as exc:
            raise InvalidRequest(str(exc), code="invalid_index") from exc

    async def for_write(self, name: str) -> str:
        """The group for a write (see :meth:`resolve_for_write`)."""
        return (await self.resolve_for_write(name)).group

    async def for_read(self, name: str) -> str:
        """The group for a read (see :meth:`resolve`)."""
        return (await self.resolve(name)).group

    async def check_writable(self, name: str) -> None:
        """Before accepting work for ``name`` (an ingest job): it exists, or may be created."""
        check_collection_name(name)
        if self.may_create(name):
            return
        await self.resolve(name)

    async def current(self, handle: Handle) -> Handle:
        """``handle`` as it is now, for a long writer (an ingest job): with a shadow
        encoder if a migration started meanwhile; ``handle`` itself when the collection
        cannot be resolved now (being dropped) or its model changed (a switch: the
        writer's vectors are of the old model, and its writes to the old pair fail)."""
        try:
            now = await self.resolve(handle.name)
        except Exception:
            return handle
        return now if now.info.fingerprint == handle.info.fingerprint else handle

    def forget(self, name: str) -> None:
        """Drop the cached handle (the group changed: dropped, migrating, switched)."""
        self._handles.pop(name, None)

    # --- lifecycle ---------------------------------------------------------------------------
    async def create(
        self, name: str, *, model: str | None = None, index: IndexSpec | None = None
    ) -> tuple[CollectionView, bool]:
        """Create ``name`` for ``model`` (a configured model's name; default: the main one)
        indexed as ``index``; idempotent for the same spec, :class:`CollectionMismatch`
        (``collection_spec_mismatch``) when it exists with another. (view, created)."""
        check_collection_name(name)
        enc = await self.model(model)
        if index is not None:  # bad params are a 422 whether or not the collection exists
            try:
                check_index(index, {"M": 16, "efConstruction": 200})
            except InvalidStoreRequest as exc:
                raise InvalidRequest(str(exc), code="invalid_index") from exc
        async with self._lock:
            try:
                info = await run_sync(self._store.group_info, name, with_counts=False)
            except UnknownGroup:
                await self._ensure(name, enc, index)
                self.forget(name)
                return await self.describe(name), True
        diffs = _differences(info, enc, index)
        if diffs:
            raise CollectionMismatch(
                f"collection {name!r} exists with another spec: "
                + "; ".join(f"{k} is {have!r}, not {want!r}" for k, (have, want) in diffs.items()),
                code="collection_spec_mismatch",
                details={k: {"existing": h, "requested": w} for k, (h, w) in diffs.items()},
            )
        return await self.describe(name), False

    async def model(self, name: str | None) -> Encoder:
        """The configured model called ``name`` (None: the main one); 409
        ``model_not_configured`` when this gateway has no such model."""
        if name is None:
            return self._encoder
        # In a thread: the first lookup builds the extras (a folder without clipsearch.json
        # is hashed for its fingerprint).
        enc = await run_sync(self.models.by_name, name)
        if enc is None:
            raise CollectionMismatch(
                f"model {name!r} is not configured on this gateway (it has "
                f"{', '.join(repr(m) for m in self.models.names())}); add its folder to "
                "CLIPSEARCH_EXTRA_MODELS",
                code="model_not_configured",
                details={"model": name, "models": self.models.names()},
            )
        return enc

    async def describe(self, name: str) -> CollectionView:
        """One collection's view (404 if unknown); an unservable one says why."""
        check_collection_name(name)
        try:
            info = await run_sync(self._store.group_info, name)
        except UnknownGroup as exc:
            raise unknown(name) from exc
        reason = None
        try:
            await self.resolve(name)
        except ClipsearchError as exc:
            reason = exc.message
        except EncoderError as exc:  # service mode, clip-server down: cannot tell now
            reason = f"the encoder cannot say which model it runs: {exc}"
        migration = None
        if info.shadow is not None:
            s = info.shadow
            migration = {"model_name": s.model_name, "fingerprint": s.fingerprint, "dim": s.dim}
        return CollectionView(
            name=name,
            model_name=info.model_name,
            fingerprint=info.fingerprint,
            dim=info.dim,
            index_type=info.index_type,
            index_params=info.index_params,
            counts=info.counts,
            created_at=info.created_at,
            servable=reason is None,
            reason=reason,
            migration=migration,
            min_score_auto=info.min_score_auto,
        )

    async def set_threshold(
        self, name: str, value: float | None, fingerprint: str | None = None
    ) -> CollectionView:
        """Store the score ``min_score: "auto"`` means for ``name`` (None: remove it). With
        ``fingerprint`` (the model it was computed with), 409 ``model_mismatch`` unless
        that is the collection's model now: a threshold is only valid for its model."""
        handle = await self.resolve(name)
        want = fingerprint or handle.info.fingerprint  # the model checked under the store lock
        try:
            await run_sync(self._store.set_threshold, name, value, fingerprint=want)
        except GroupMismatch as exc:
            self.forget(name)
            now = await self.resolve(name)
            raise CollectionMismatch(
                f"the threshold was computed with model fingerprint {want}, collection "
                f"{name!r} uses {now.info.model_name!r} ({now.info.fingerprint})",
                code="model_mismatch",
                details={"threshold": want, "collection": now.info.fingerprint},
            ) from exc
        except InvalidStoreRequest as exc:
            raise InvalidRequest(str(exc), code="invalid_min_score") from exc
        self.forget(name)
        return await self.describe(name)

    async def all(self) -> list[CollectionView]:
        views = []
        for name in await run_sync(self._store.list_groups):
            try:
                views.append(await self.describe(name))
            except UnknownCollection:  # dropped meanwhile
                continue
        return views

    async def drop(
        self, name: str, blobs: Blobs, cancel_jobs: Callable[[str], Awaitable[int]]
    ) -> dict[str, int]:
        """Drop ``name``: cancel the jobs writing to it, drop both Milvus collections and
        its record, then delete the blobs no other collection references. 404 if unknown.
        (A crash after the drop leaves orphan blobs at worst: harmless, never a dangling
        reference.)"""
        check_collection_name(name)
        try:
            await run_sync(self._store.group_info, name, with_counts=False)
        except UnknownGroup as exc:
            raise unknown(name) from exc
        cancelled = await cancel_jobs(name)
        image_ids = await run_sync(self._store.scan_ids, name, "images")
        async with self._lock:
            await run_sync(self._store.drop_group, name)
            self.forget(name)
        removed = await run_sync(self._drop_blobs, blobs, name, image_ids)
        return {"jobs_cancelled": cancelled, "images": len(image_ids), "blobs_removed": removed}

    def _drop_blobs(self, blobs: Blobs, name: str, image_ids: list[str]) -> int:
        wanted = set(image_ids)
        for other in self._store.list_groups():
            if other == name or not wanted:
                continue
            wanted -= self._store.existing_ids(other, "images", sorted(wanted))
        for blob_id in wanted:
            try:
                blobs.delete(blob_id)
            except Exception as exc:  # an orphan blob is harmless; say so, go on
                log.warning("could not delete blob %s of dropped collection: %s", blob_id, exc)
        return len(wanted)

    async def _info_or_none(self, name: str) -> GroupInfo | None:
        try:
            return await run_sync(self._store.group_info, name, with_counts=False)
        except Exception:  # only used to enrich an error message
            return None


def _differences(
    info: GroupInfo, enc: Encoder, index: IndexSpec | None
) -> dict[str, tuple[Any, Any]]:
    """What differs between an existing group and a PUT's spec: the model always (absent
    means the main one), the index type and each index parameter the request names."""
    diffs: dict[str, tuple[Any, Any]] = {}
    if info.fingerprint != enc.fingerprint:
        diffs["model"] = (info.model_name, enc.model_name)
    if index is not None:
        if index.type.upper() != info.index_type:
            diffs["index.type"] = (info.index_type, index.type.upper())
        for key, value in (index.params or {}).items():
            if info.index_params.get(key) != value:
                diffs[f"index.params.{key}"] = (info.index_params.get(key), value)
    return diffs
