"""The job manager: workers that run jobs from one queue, started in the app lifespan.

On start-up it re-queues every job a previous process left ``queued`` or ``running`` (the
crash case): their pending items are simply worked again, and the ``attempted`` marks make
that exact (see :mod:`clipsearch.jobs.store`). ``CLIPSEARCH_INGEST_CONCURRENT_JOBS`` jobs
run at once, each in its own pipeline: they share the encoder (whose batches interleave),
so one huge or stuck job slows the others instead of blocking them. A job over
``CLIPSEARCH_INGEST_JOB_TIMEOUT_S`` is stopped and its unfinished items fail. Finished jobs
are deleted after ``CLIPSEARCH_JOB_RETENTION_S`` by a periodic task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio import to_thread

from clipsearch.core.config import Settings
from clipsearch.core.errors import ClipsearchError, TooManyRequests
from clipsearch.encoder.protocol import Encoder
from clipsearch.jobs.entry import Deps
from clipsearch.jobs.migration import MigrationFailed, MigrationRun
from clipsearch.jobs.pipeline import Pipeline
from clipsearch.jobs.spool import Spool
from clipsearch.jobs.store import Job, JobKind, JobStatus, JobStore, NewItem
from clipsearch.store.protocol import VectorStore
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.collections import Collections

log = logging.getLogger(__name__)


class QueueFull(TooManyRequests):
    """Too much work is pending; the client should retry after ``retry_after_s`` seconds."""

    def __init__(self, pending: int, retry_after: int) -> None:
        super().__init__(
            f"{pending} items are already waiting to be ingested",
            details={"pending_items": pending},
            retry_after_s=retry_after,
        )
        self.pending = pending


@dataclass(slots=True)
class _Progress:
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


class JobManager:
    """Owns the job store and the worker task. All public methods are async-safe."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder,
        store: VectorStore,
        blobs: Blobs,
        collections: Collections,
        jobs: JobStore | None = None,
    ) -> None:
        self.settings = settings
        self.jobs = jobs or JobStore(settings.data_dir / "jobs.db")
        self.spool = Spool(settings.data_dir / "spool", settings.spool_max_bytes)
        self.deps = Deps(settings, encoder, store, blobs, self.jobs, self.spool, collections)
        self.collections = collections
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()
        self._progress: dict[str, _Progress] = {}
        self._last_rate = 0.0

    async def start(self) -> None:
        """Re-queue unfinished jobs (crash recovery), drop spool folders no unfinished job
        needs (a crash between a job's end and its clean-up, or a half-received upload),
        and start the workers and the pruning task."""
        active = await to_thread.run_sync(self.jobs.active_job_ids)
        await to_thread.run_sync(self.spool.sweep, set(active))
        for job_id in active:
            self._queue.put_nowait(job_id)
        if not self._queue.empty():
            log.info("resuming %d unfinished ingest job(s)", self._queue.qsize())
        self._workers = [
            asyncio.create_task(self._work(), name=f"ingest-jobs-{n}")
            for n in range(self.settings.ingest_concurrent_jobs)
        ]
        if self.settings.job_retention_s > 0:
            self._workers.append(asyncio.create_task(self._prune_forever(), name="job-prune"))

    async def stop(self) -> None:
        """Stop working; an interrupted job stays ``running`` and resumes on next start."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await to_thread.run_sync(self.jobs.close)

    # --- retention ---------------------------------------------------------------------------
    async def prune(self) -> int:
        """Delete the jobs (and items) that ended more than the retention ago; their count."""
        before = time.time() - self.settings.job_retention_s
        removed = await to_thread.run_sync(self.jobs.prune_finished, before)
        if removed:
            log.info("pruned %d finished job(s) older than %g s", removed,
                     self.settings.job_retention_s)  # fmt: skip
        return removed

    async def _prune_forever(self) -> None:
        # Often enough that nothing outlives its retention by much more than a tenth of it,
        # never more than once a minute nor less than once an hour.
        every = min(3600.0, max(60.0, self.settings.job_retention_s / 10))
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("pruning finished jobs failed")
            await asyncio.sleep(every)

    # --- submit / cancel -------------------------------------------------------------------
    async def check_capacity(self, adding: int = 0) -> None:
        """Raise :class:`QueueFull` when ``adding`` more items would pass the limit."""
        pending = await to_thread.run_sync(self.jobs.pending_item_count)
        limit = self.settings.ingest_max_pending_items
        if pending + adding > limit or (adding == 0 and pending >= limit):
            rate = self._last_rate or 10.0
            retry = int(min(3600, max(1, (pending + adding - limit) / rate)))
            raise QueueFull(pending, retry)

    async def submit(
        self,
        collection: str,
        items: Sequence[NewItem],
        *,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        owner: str | None = None,
        kind: JobKind = "ingest",
    ) -> tuple[Job, bool]:
        """Record the job with all its items (durably), then queue it; (job, created)."""
        job, created = await to_thread.run_sync(
            lambda: self.jobs.create_job(
                collection,
                items,
                metadata=metadata,
                idempotency_key=idempotency_key,
                job_id=job_id,
                owner=owner,
                kind=kind,
            )
        )
        if created:
            self._queue.put_nowait(job.id)
        return job, created

    async def find_by_key(self, key: str) -> Job | None:
        return await to_thread.run_sync(self.jobs.find_by_key, key)

    async def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; finished jobs are returned unchanged."""
        job = await self.get(job_id)
        if job is None or job.status not in ("queued", "running"):
            return job
        self._cancelled.add(job_id)
        task = self._running.get(job_id)
        running = task is not None
        if task is not None:
            task.cancel()
        await to_thread.run_sync(self.jobs.set_status, job_id, "cancelled")
        if not running:  # a running job's worker removes its uploads once it has stopped
            await to_thread.run_sync(self.spool.remove_tree, self.spool_dir(job_id))
        return await self.get(job_id)

    async def cancel_collection(self, collection: str) -> int:
        """Cancel every queued or running job of ``collection`` (it is being dropped); how
        many. A running job is waited for, so nothing writes to the collection after."""
        ids = await to_thread.run_sync(self.jobs.active_jobs_of, collection)
        tasks = []
        for job_id in ids:
            task = self._running.get(job_id)
            await self.cancel(job_id)
            if task is not None:
                tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(ids)

    # --- read -------------------------------------------------------------------------------
    async def get(self, job_id: str) -> Job | None:
        return await to_thread.run_sync(self.jobs.get_job, job_id)

    def rate_eta(self, job: Job) -> tuple[float, float | None]:
        """Items/s since this process started the job, and seconds left at that rate."""
        progress = self._progress.get(job.id)
        if progress is None or job.status != "running":
            return 0.0, (0.0 if job.status not in ("queued", "running") else None)
        rate = progress.rate()
        pending = job.counts.get("pending", 0)
        return rate, (pending / rate if rate > 0 else None)

    # --- worker ------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            if job_id in self._cancelled:
                continue
            try:
                await self._run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest job %s crashed", job_id)
                await to_thread.run_sync(
                    self.jobs.set_status, job_id, "failed", "internal error (see server log)"
                )

    async def _run(self, job_id: str) -> None:
        job = await self.get(job_id)
        if job is None or job.status not in ("queued", "running"):
            return
        await to_thread.run_sync(self.jobs.set_status, job_id, "running")
        if job.kind == "migrate":
            await self._run_migration(job)
            return
        try:
            handle = await self.collections.resolve_for_write(job.collection)
        except ClipsearchError as exc:
            await to_thread.run_sync(self.jobs.set_status, job_id, "failed", exc.message)
            return
        if job_id in self._cancelled:  # cancelled while we waited for the collection
            return
        progress = self._progress[job_id] = _Progress()

        def on_final(n: int) -> None:
            progress.done += n
            self._last_rate = progress.rate()

        pipeline = Pipeline(self.deps, job, handle, on_final)
        group = handle.group
        task = asyncio.create_task(pipeline.run(), name=f"ingest-{job_id}")
        self._running[job_id] = task
        limit = self.settings.ingest_job_timeout_s or None
        timed_out = False
        try:
            async with asyncio.timeout(limit):
                await task
        except TimeoutError:
            timed_out = True
            message = f"job time limit of {limit:g} s exceeded"
            failed = await to_thread.run_sync(self.jobs.fail_pending, job_id, message)
            log.warning("ingest job %s stopped after %g s: %d item(s) failed", job_id, limit,
                        failed)  # fmt: skip
        except asyncio.CancelledError:
            if job_id not in self._cancelled:
                raise  # shutdown: the job stays running and resumes on the next start
        finally:
            self._running.pop(job_id, None)
            self._progress.pop(job_id, None)
        # A bulk job ends with a flush, so its rows are indexed (fast search on Lite, HNSW
        # on a server) now rather than after the store's idle delay. Best effort: the rows
        # are already readable without it.
        try:
            await to_thread.run_sync(self.deps.store.flush, group)
        except Exception as exc:
            log.warning("flush after ingest job %s failed: %s", job_id, exc)
        final = await self.get(job_id)
        assert final is not None
        status = _final_status(final, cancelled=job_id in self._cancelled)
        note = "job time limit exceeded" if timed_out else None
        await to_thread.run_sync(self.jobs.set_status, job_id, status, note)
        # Final, cancelled included: nothing will read these uploads again.
        await to_thread.run_sync(self.spool.remove_tree, self.spool_dir(job_id))
        log.info("ingest job %s %s: %s", job_id, status, final.counts)

    async def _run_migration(self, job: Job) -> None:
        """A migrate job (:mod:`clipsearch.jobs.migration`): cancelled or failed before its
        switch, its shadow collections go; on shutdown it stays running and resumes."""
        progress = self._progress[job.id] = _Progress()

        def on_final(n: int) -> None:
            progress.done += n

        run = MigrationRun(self.deps, self.collections, job, on_final)
        task = asyncio.create_task(run.run(), name=f"migrate-{job.id}")
        self._running[job.id] = task
        status: JobStatus = "done"
        note: str | None = None
        try:
            await task
        except asyncio.CancelledError:
            if job.id not in self._cancelled:
                raise  # shutdown: resumed on the next start
            status = "cancelled"
            await run.abort()
        except (MigrationFailed, ClipsearchError) as exc:
            status, note = "failed", str(exc)
            await run.abort()
        except Exception as exc:
            log.exception("migration job %s crashed", job.id)
            status, note = "failed", f"internal error: {exc}"
            await run.abort()
        finally:
            self._running.pop(job.id, None)
            self._progress.pop(job.id, None)
        await to_thread.run_sync(self.jobs.set_status, job.id, status, note)
        log.info("migration job %s of %s: %s", job.id, job.collection, status)

    @property
    def spool_root(self) -> Path:
        return self.spool.root

    def spool_dir(self, key: str) -> Path:
        return self.spool.dir(key)


def _final_status(job: Job, *, cancelled: bool) -> JobStatus:
    c = job.counts
    if cancelled:
        return "cancelled"
    if c.get("pending", 0):
        return "partial"  # should not happen: the pipeline finishes every item it reads
    if c.get("failed", 0) == 0:
        return "done"
    done = c.get("stored", 0) + c.get("updated", 0) + c.get("duplicate", 0)
    return "partial" if done else "failed"
