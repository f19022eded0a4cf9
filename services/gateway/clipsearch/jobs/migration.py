"""Migration jobs: move a collection to another model without downtime.

``POST /v1/collections/{name}/migrate`` (:func:`start_migration`) creates the shadow pair
(``VectorStore.begin_shadow``) *first*, so every write from then on lands in both pairs
(the write paths mirror into it, :meth:`PictureWriter.mirror`), then lists every image and
text id as the job's items: a durable list, so the job's progress is the jobs API's usual
counts and a restart simply resumes the pending items (copies are idempotent upserts).

The job (:class:`MigrationRun`, kind ``migrate``, run by the one job manager) re-encodes
each image from its original in the blob store and each text, with the new model, into the
shadow pair; searches keep using the live pair. Then a catch-up pass copies what the
shadow still lacks (a write that raced the start), the collection is switched atomically
(one meta-row write, :meth:`VectorStore.switch_shadow`), and the old pair is dropped after
``CLIPSEARCH_MIGRATION_GRACE_S``. A migration with records it could not re-encode does
not switch: the shadow pair is dropped and the collection stays on its model. Cancelled
(``DELETE /v1/jobs/{id}``) before the switch, the shadow pair is dropped too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from clipsearch.core.errors import CollectionMismatch
from clipsearch.encoder.protocol import Encoder, EncoderError
from clipsearch.jobs.entry import Deps, Result
from clipsearch.jobs.store import Item, Job, NewItem
from clipsearch.store.protocol import GroupMismatch, ImageRecord, IndexSpec, TextRecord
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import run_sync

if TYPE_CHECKING:
    from clipsearch.jobs.runner import JobManager

log = logging.getLogger(__name__)
BATCH = 64
CATCH_UP_PASSES = 3


class MigrationFailed(Exception):
    """The migration cannot finish; the collection stays on its model."""


async def start_migration(
    manager: JobManager, collections: Collections, name: str, model: str, owner: str | None
) -> Job:
    """Begin migrating ``name`` to the configured ``model``; the job (202). 404 unknown
    collection; 409 ``model_not_configured``, ``migration_not_needed`` (it already uses
    that model) or ``migration_in_progress``."""
    handle = await collections.resolve(name)
    target = await collections.model(model)
    info = handle.info
    if target.fingerprint == info.fingerprint:
        raise CollectionMismatch(
            f"collection {name!r} already uses model {info.model_name!r}",
            code="migration_not_needed",
        )
    running = await run_sync(manager.jobs.active_jobs_of, name, "migrate")
    if running or info.shadow is not None:
        raise CollectionMismatch(
            f"collection {name!r} is already being migrated",
            code="migration_in_progress",
            details={"job_id": running[0] if running else None},
        )
    store = manager.deps.store
    params = {k: v for k, v in info.index_params.items() if k in ("M", "efConstruction")}
    try:
        await run_sync(
            lambda: store.begin_shadow(
                name,
                dim=target.dim,
                model_name=target.model_name,
                fingerprint=target.fingerprint,
                index=IndexSpec(info.index_type, params),
            )
        )
    except GroupMismatch as exc:
        raise CollectionMismatch(str(exc), code="migration_in_progress") from exc
    collections.forget(name)  # writes from now on go to both pairs
    items = [NewItem(i, "image") for i in await run_sync(store.scan_ids, name, "images")]
    items += [NewItem(i, "text") for i in await run_sync(store.scan_ids, name, "texts")]
    meta = {"model": target.model_name, "fingerprint": target.fingerprint,
            "from_model": info.model_name, "from_fingerprint": info.fingerprint}  # fmt: skip
    job, _ = await manager.submit(name, items, metadata=meta, owner=owner, kind="migrate")
    return job


class MigrationRun:
    """One run of a migrate job (a fresh one after a restart resumes where it was)."""

    def __init__(
        self, deps: Deps, collections: Collections, job: Job, on_final: Callable[[int], None]
    ) -> None:
        self.d = deps
        self.collections = collections
        self.job = job
        self.name = job.collection
        self.fingerprint = str(job.metadata.get("fingerprint", ""))
        self.on_final = on_final

    async def _note(self, note: str | None) -> None:
        await run_sync(self.d.jobs.set_note, self.job.id, note)

    async def run(self) -> None:
        """Copy, catch up, switch, wait out the grace period, drop the old pair."""
        store = self.d.store
        target = self.collections.models.by_fingerprint(self.fingerprint)
        if target is None:
            raise MigrationFailed(
                f"model {self.job.metadata.get('model')!r} (fingerprint {self.fingerprint}) "
                "is no longer configured (CLIPSEARCH_EXTRA_MODELS)"
            )
        info = await run_sync(store.group_info, self.name, with_counts=False)
        if info.shadow is None:
            if info.fingerprint == self.fingerprint:  # a restart after the switch
                await self._retire()
                return
            raise MigrationFailed("the shadow collections of this migration are gone")
        pending = await run_sync(self.d.jobs.pending_items, self.job.id)
        for start in range(0, len(pending), BATCH):
            await self._copy_items(pending[start : start + BATCH], target)
        job = await run_sync(self.d.jobs.get_job, self.job.id)
        failed = job.counts.get("failed", 0) if job is not None else 0
        if failed:
            raise MigrationFailed(
                f"{failed} record(s) could not be re-encoded (see the items); the collection "
                f"stays on model {info.model_name!r}"
            )
        await self._catch_up(target)
        await run_sync(store.flush, self.name)
        await run_sync(store.switch_shadow, self.name)
        self.collections.forget(self.name)
        log.info("collection %s switched to model %s", self.name, target.model_name)
        await self._retire()

    async def abort(self) -> None:
        """Cancelled or failed before the switch: drop the shadow pair (writes stop
        mirroring into it), the collection stays as it was."""
        store = self.d.store
        try:
            info = await run_sync(store.group_info, self.name, with_counts=False)
        except Exception:  # the collection was dropped meanwhile: nothing to undo
            return
        if info.shadow is not None and info.shadow.fingerprint == self.fingerprint:
            await run_sync(store.drop_shadow, self.name)
        self.collections.forget(self.name)

    async def _retire(self) -> None:
        grace = self.d.settings.migration_grace_s
        await self._note(f"switched; the old collections are dropped after {grace:g} s")
        await asyncio.sleep(grace)
        await run_sync(self.d.store.drop_retired, self.name)
        await self._note(None)

    # --- copying ---------------------------------------------------------------------------
    async def _copy_items(self, items: Sequence[Item], target: Encoder) -> None:
        results: list[Result] = []
        for kind in ("image", "text"):
            part = [it for it in items if it.kind == kind]
            if part:
                done = await self._copy(kind, [it.source for it in part], target)
                for it in part:
                    status, error = done.get(it.source, ("stored", None))
                    results.append((it.seq, status, it.source, error))
        if results:
            await run_sync(self.d.jobs.finish_items, self.job.id, results)
            self.on_final(len(results))

    async def _copy(
        self, kind: str, ids: list[str], target: Encoder
    ) -> dict[str, tuple[Any, str | None]]:
        """Re-encode the live records ``ids`` into the shadow pair; per id that did not
        simply get stored: (status, error)."""
        store, name, fp = self.d.store, self.name, target.fingerprint
        out: dict[str, tuple[Any, str | None]] = {}
        if kind == "text":
            rows = await run_sync(store.get, name, "texts", ids)
            vectors = await self._encode(target.encode_texts, [r["text"] for r in rows], rows, out)
            recs = [
                TextRecord(id=r["id"], vector=v, text=r["text"], image_id=r["image_id"],
                           metadata=r["metadata"] or {}, created_at=r["created_at"])
                for r, v in zip(rows, vectors, strict=True) if v is not None
            ]  # fmt: skip
            if recs:
                await run_sync(lambda: store.upsert_texts(name, recs, fingerprint=fp))
        else:
            rows = await run_sync(store.get, name, "images", ids)
            data: list[bytes] = []
            readable = []
            for r in rows:
                try:
                    data.append(await run_sync(self.d.blobs.read, r["id"]))
                    readable.append(r)
                except OSError as exc:
                    out[r["id"]] = ("failed", f"original missing from the blob store: {exc}")
            vectors = await self._encode(target.encode_images, data, readable, out)
            recs_i = [
                ImageRecord(id=r["id"], vector=v, source=r["source"],
                            content_type=r["content_type"], width=r["width"], height=r["height"],
                            caption=r["caption"], metadata=r["metadata"] or {},
                            created_at=r["created_at"])
                for r, v in zip(readable, vectors, strict=True) if v is not None
            ]  # fmt: skip
            if recs_i:
                await run_sync(lambda: store.upsert_images(name, recs_i, fingerprint=fp))
        found = {str(r["id"]) for r in rows}
        for i in ids:
            if i not in found:  # deleted since the job was made: nothing to copy
                out[i] = ("duplicate", "deleted during the migration")
        return out

    @staticmethod
    async def _encode(
        encode: Callable[[Sequence[Any]], Any],
        inputs: Sequence[Any],
        rows: Sequence[dict[str, Any]],
        out: dict[str, tuple[Any, str | None]],
    ) -> list[Any]:
        """Vectors of ``inputs`` (None for one that failed alone, noted in ``out``)."""
        if not inputs:
            return []
        try:
            return list(await encode(list(inputs)))
        except (EncoderError, ValueError) as exc:
            if len(inputs) == 1:
                out[str(rows[0]["id"])] = ("failed", f"cannot re-encode: {exc}")
                return [None]
        vectors: list[Any] = []
        for x, r in zip(inputs, rows, strict=True):
            try:
                vectors.append((await encode([x]))[0])
            except (EncoderError, ValueError) as exc:
                out[str(r["id"])] = ("failed", f"cannot re-encode: {exc}")
                vectors.append(None)
        return vectors

    async def _catch_up(self, target: Encoder) -> None:
        """Copy what the live pair has and the shadow lacks (a write that raced the
        migration's start or a failed mirror write), until both hold the same ids."""
        store = self.d.store
        for _ in range(CATCH_UP_PASSES):
            missing = 0
            for target_kind, kind in (("images", "image"), ("texts", "text")):
                live = set(await run_sync(store.scan_ids, self.name, target_kind))
                shadow = set(
                    await run_sync(lambda t=target_kind: store.scan_ids(self.name, t, shadow=True))
                )
                lacking = sorted(live - shadow)
                missing += len(lacking)
                for start in range(0, len(lacking), BATCH):
                    await self._copy(kind, lacking[start : start + BATCH], target)
            if not missing:
                return
            log.info("migration of %s: caught up %d record(s)", self.name, missing)
