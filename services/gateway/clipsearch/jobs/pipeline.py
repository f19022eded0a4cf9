"""The ingest pipeline of one job: four overlapping stages joined by bounded queues.

    read/fetch + hash + dedupe -> decode + preprocess (thread pool) -> encode (batches)
        -> upsert (batches, once their blobs are written) -> mark items
                  `-> blob write (own pool, started as soon as a picture decoded)

Each stage is an asyncio task; CPU work runs in threads, so while the encoder works on one
batch the decoders already prepare the next and the writer stores the previous one. Blob
writes (file + thumbnail, fsynced) overlap the encoding instead of waiting for the writer:
done one by one in the writer they were the pipeline's bottleneck (``clipsearch bench
ingest``). Each picture is decoded once: the decoder's picture is preprocessed for the
encoder's pixel path and thumbnailed. Blobs and records are written by
:mod:`clipsearch.usecases.picture_writes`, the write path of ``POST /v1/images`` too, so a
picture that fails leaves nothing behind (its new blob included). Queues are bounded, so
memory stays flat whatever the job size. A picture already stored that brings a caption or
metadata it lacks is changed as an upload would change it (``updated``, see
:mod:`clipsearch.usecases.image_patch`). Bad items are marked ``failed`` where they fail
and never stop the job. The upsert of a batch is preceded
by marking its items ``attempted`` (see :mod:`clipsearch.jobs.store`), which makes a
resumed job exact. Copies of one picture within a job: :mod:`clipsearch.jobs.dedupe`.
An encoder *outage* is not an item's fault: the job pauses until the encoder is back and
retries the batch (bounded by ``CLIPSEARCH_INGEST_ENCODER_WAIT_S``, see
:mod:`clipsearch.jobs.outage`); only a bad input fails its item.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from clipsearch.core.errors import ClipsearchError
from clipsearch.encoder.protocol import ImageDecodeError, Vectors, pixel_path
from clipsearch.jobs.dedupe import InJobDuplicates
from clipsearch.jobs.entry import Deps, Entry, Result, attach_vectors, cpu_count, retrieved, stub
from clipsearch.jobs.fetch import Fetcher
from clipsearch.jobs.item_read import fetcher_for, read_item
from clipsearch.jobs.outage import EncoderGaveUp, OutageWait, wait_for_store
from clipsearch.jobs.store import Item, ItemStatus, Job
from clipsearch.usecases.collections import Handle
from clipsearch.usecases.common import check_text
from clipsearch.usecases.image_patch import ImagePatcher
from clipsearch.usecases.imaging import inspect_image
from clipsearch.usecases.picture_writes import NewPicture, PictureWriter, blob_write_failed
from clipsearch.usecases.pixel_budget import shared_budget

log = logging.getLogger(__name__)
T = TypeVar("T")
_END = None


class Pipeline:
    """Runs the pending items of one job; ``on_final(n)`` is told of each finished batch."""

    def __init__(
        self, deps: Deps, job: Job, handle: Handle, on_final: Callable[[int], None]
    ) -> None:
        self.d = deps
        self.cfg = deps.settings
        self.job = job
        # The collection's model encodes (not necessarily the gateway's main one).
        self.handle = handle
        self.group = handle.group
        self.encoder = handle.encoder
        self.on_final = on_final
        workers = self.cfg.ingest_decode_workers or max(1, cpu_count())
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-decode")
        self.io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest-io")
        # Item reads on their own threads: a read stuck past its deadline (a hung mount)
        # keeps its thread, and must not take the job's bookkeeping (self.io) with it.
        self.reads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest-read")
        # Blob writes (thumbnail + two fsyncs each) wait on the disk far more than they
        # compute: several at once, so a batch's writes overlap instead of queueing.
        self.blob_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ingest-blob")
        cap = self.cfg.ingest_queue_items
        self.q_decode: asyncio.Queue[Entry | None] = asyncio.Queue(cap)
        self.q_encode: asyncio.Queue[Entry | None] = asyncio.Queue(cap)
        self.q_store: asyncio.Queue[list[Entry] | None] = asyncio.Queue(max(2, cap // 32))
        self.dups = InJobDuplicates()
        self.pixel_encoder = pixel_path(self.encoder)
        self.outage = OutageWait(self.encoder, self.cfg.ingest_encoder_wait_s, self._note)
        self.writer = PictureWriter(deps.store, deps.blobs)
        self.patcher = ImagePatcher(self.cfg, deps.encoder, deps.store, self.writer)
        self.budget = shared_budget(self.cfg.decode_budget_mpx)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._in(self.io, fn, *args)

    @staticmethod
    async def _in(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def finish(self, results: Sequence[Result], entries: Iterable[Entry] = ()) -> None:
        """Record final states, then drop the spooled uploads they no longer need; copies
        waiting on a now stored picture are finished as duplicates right after."""
        if not results:
            return
        await self._io(self.d.jobs.finish_items, self.job.id, list(results))
        spools = [e.item.spool for e in entries if e.item.spool]
        await self._io(self.d.spool.remove_files, spools)
        self.on_final(len(results))
        copies = [(it, r[2]) for r in results for it in self.dups.settle(r[0], r[1], r[2])]
        if copies:
            await self.finish(
                [(it.seq, "duplicate", image_id, None) for it, image_id in copies],
                [stub(it) for it, _ in copies],
            )

    async def fail(self, item: Item, error: str, image_id: str | None = None) -> None:
        await self.finish([(item.seq, "failed", image_id, error)], [stub(item)])

    async def _note(self, note: str | None) -> None:
        """Show (or clear) why a running job is not progressing, in its ``error`` field."""
        await self._io(self.d.jobs.set_note, self.job.id, note)

    # --- run -----------------------------------------------------------------------------
    async def run(self) -> None:
        fetcher = fetcher_for(self.cfg)
        # Register every Pillow plugin once, here: concurrent first calls of Image.open from
        # several decode threads race in Pillow's lazy plugin init (KeyError: 'MPO').
        await self._io(Image.init)
        tasks = [asyncio.create_task(self._reader(fetcher), name="ingest-read")]
        tasks += [asyncio.create_task(self._decoder()) for _ in range(self.workers)]
        tasks += [asyncio.create_task(self._encoder()), asyncio.create_task(self._writer())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await fetcher.aclose()
            for pool in (self.pool, self.io, self.reads, self.blob_pool):
                pool.shutdown(wait=False, cancel_futures=True)

    # --- stage 1: read, hash, dedupe ------------------------------------------------------
    async def _reader(self, fetcher: Fetcher) -> None:
        pending = await self._io(self.d.jobs.pending_items, self.job.id)
        redo = await self._reconcile([i for i in pending if i.attempted and i.image_id])
        pending = [i for i in pending if not (i.attempted and i.image_id) or i.seq in redo]
        await self._admit(fetcher, pending)
        # Copies of a picture wait for its first copy (see clipsearch.jobs.dedupe); stay
        # until none does, so that copies whose first copy failed can still be tried.
        dups = self.dups
        while dups.waiting():
            dups.changed.clear()
            if again := dups.take_redo():
                await self._admit(fetcher, again)
            else:
                await dups.changed.wait()
        for _ in range(self.workers):
            await self.q_decode.put(_END)

    async def _admit(self, fetcher: Fetcher, items: Sequence[Item]) -> None:
        """Read ``items`` a chunk at a time; queue the new pictures, finish the rest."""
        # One vector-store lookup per chunk: not too small (a query per handful of local
        # files is mostly overhead), not so large that many big downloads are held at once.
        chunk = max(32, self.cfg.fetch_concurrency)
        for start in range(0, len(items), chunk):
            part = items[start : start + chunk]
            read = await asyncio.gather(*(self._read(fetcher, it) for it in part))
            fresh: list[Entry] = []
            results: list[Result] = []
            finished: list[Entry] = []
            for it, got in zip(part, read, strict=True):
                if isinstance(got, str):
                    results.append((it.seq, "failed", None, got))
                    finished.append(stub(it))
                    continue
                verdict = self.dups.classify(it, got.id)
                if verdict == "duplicate":
                    results.append((it.seq, "duplicate", got.id, None))
                    finished.append(got)
                elif verdict == "new":
                    fresh.append(got)
                # "wait": its bytes are dropped here; re-read only if it must be tried
            existing = await self._stored(self.group, [e.id for e in fresh])
            for e in fresh:
                if e.id in existing:
                    status, error = await self._update_existing(e)
                    results.append((e.item.seq, status, e.id, error))
                    finished.append(e)
            await self.finish(results, finished)
            for e in fresh:
                if e.id not in existing:
                    await self.q_decode.put(e)

    async def _update_existing(self, e: Entry) -> tuple[ItemStatus, str | None]:
        """A picture already stored, as on the upload path: a caption it lacks is added,
        metadata that changes it merged (``updated``); nothing new is a ``duplicate``."""
        metadata = {**self.job.metadata, **e.item.metadata}
        try:
            changed = await self.patcher.add_new(
                self.group, e.id, e.item.captions, metadata, handle=await self._handle_now()
            )
        except ClipsearchError as exc:
            return "failed", exc.message
        return ("updated" if changed else "duplicate"), None

    async def _reconcile(self, attempted: list[Item]) -> set[int]:
        """Items a crash caught between upsert and marking: in Milvus -> stored (that
        upsert was ours), otherwise they are redone. Returns the seqs to redo."""
        if not attempted:
            return set()
        ids = [str(i.image_id) for i in attempted]
        there = await self._stored(self.group, ids)
        done = [i for i in attempted if i.image_id in there]
        self.dups.known.update(str(i.image_id) for i in done)
        await self.finish([(i.seq, "stored", i.image_id, None) for i in done], map(stub, done))
        return {i.seq for i in attempted if i.image_id not in there}

    async def _stored(self, group: str, ids: list[str]) -> set[str]:
        """Which of ``ids`` the store holds, waiting out a store outage (see
        :func:`~clipsearch.jobs.outage.wait_for_store`)."""
        return await wait_for_store(
            lambda: self._io(self.d.store.existing_ids, group, "images", ids),
            self.cfg.milvus_write_retry_s,
            self._note,
        )

    async def _read(self, fetcher: Fetcher, item: Item) -> Entry | str:
        """The item's bytes and content id, or an error message (:mod:`.item_read`)."""
        return await read_item(fetcher, item, self.cfg, self.reads, self.io)

    # --- stage 2: decode + preprocess ------------------------------------------------------
    async def _decoder(self) -> None:
        loop = asyncio.get_running_loop()
        while (e := await self.q_decode.get()) is not _END:
            try:
                image = await loop.run_in_executor(self.pool, self._decode, e)
                e.captions = [
                    check_text(c, max_chars=self.cfg.max_text_chars, what="caption")
                    for c in e.item.captions
                    if c.strip()
                ]
            except ClipsearchError as exc:  # a bad caption, or a bad picture
                prefix = "cannot decode image: " if isinstance(exc, ImageDecodeError) else ""
                await self.fail(e.item, prefix + exc.message, e.id)
                continue
            except Exception as exc:  # whatever else Pillow raises
                await self.fail(e.item, f"cannot decode image: {exc}", e.id)
                continue
            # A decodable picture: write its blob now, while it is encoded, not after; its
            # thumbnail from the picture just decoded (dropped once the write is done).
            put = self.writer.put_blob
            e.blob = loop.run_in_executor(self.blob_pool, put, e.id, e.data, e.content_type, image)
            del image
            e.blob.add_done_callback(retrieved)
            await self.q_encode.put(e)
        await self.q_encode.put(_END)

    def _decode(self, e: Entry) -> Image.Image:
        """Decode once, as uploads do: the picture is validated, preprocessed for the
        encoder's pixel path (if it has one) and thumbnailed from this one decode."""
        seen = inspect_image(
            e.data, max_pixels=self.cfg.max_pixels, budget=self.budget, encoder=self.encoder
        )
        e.pixels = seen.pixels
        e.width, e.height = seen.info.width, seen.info.height
        return seen.image

    async def _drop_blobs(self, batch: Sequence[Entry]) -> None:
        """Blobs written for entries that failed before their vectors were stored go again
        (unless a stored image shares them), as on the upload path."""
        new: list[str] = []
        for e in batch:
            if e.blob is None:
                continue
            try:
                if await e.blob:
                    new.append(e.id)
            except Exception:
                pass
        if new:
            await self._io(self.writer.discard_blobs, new)

    # --- stage 3: encode in batches --------------------------------------------------------
    async def _encoder(self) -> None:
        ends = 0
        size = self.cfg.encoder_batch_size
        while ends < self.workers:
            batch: list[Entry] = []
            while len(batch) < size and ends < self.workers:
                # Block for the first item; then take what is ready, waiting briefly so a
                # batch is full when the decoders are only a little behind.
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # lands as the get completes, and a cancelled job then never stops.
                try:
                    async with asyncio.timeout(None if not batch else 0.02):
                        e = await self.q_encode.get()
                except TimeoutError:
                    break
                if e is _END:
                    ends += 1
                else:
                    batch.append(e)
            if batch:
                await self._encode_batch(batch)
        await self.q_store.put(_END)

    async def _encode_batch(self, batch: list[Entry]) -> None:
        try:
            vectors, text_vectors = await self.outage.call(lambda: self._vectors(batch))
        except EncoderGaveUp as exc:
            await self._drop_blobs(batch)
            failed: list[Result] = [(e.item.seq, "failed", e.id, str(exc)) for e in batch]
            await self.finish(failed, [stub(e.item) for e in batch])
            return
        except Exception as exc:
            if len(batch) == 1:
                await self._drop_blobs(batch)
                await self.fail(batch[0].item, f"encoder failed: {exc}", batch[0].id)
                return
            for e in batch:  # find the bad one; the others still go through
                await self._encode_batch([e])
            return
        attach_vectors(batch, vectors, text_vectors)
        await self.q_store.put(batch)

    async def _vectors(self, batch: list[Entry]) -> tuple[Vectors, Vectors | None]:
        """Image vectors of ``batch`` and the vectors of all its captions, in order."""
        enc = self.encoder
        if self.pixel_encoder is not None:
            pixels = np.stack([e.pixels for e in batch if e.pixels is not None])
            vectors = await self._io(self.pixel_encoder.encode_pixels, pixels)
        else:
            vectors = await enc.encode_images([e.data for e in batch])
        texts = [c for e in batch for c in e.captions]
        return vectors, (await enc.encode_texts(texts) if texts else None)

    # --- stage 4: blobs + upsert + mark -----------------------------------------------------
    async def _writer(self) -> None:
        size = self.cfg.ingest_upsert_batch_size
        pending: list[Entry] = []
        ended = False
        while not ended:
            got = await self.q_store.get()
            if got is _END:
                ended = True
            else:
                pending.extend(got)
                while not self.q_store.empty() and len(pending) < size:
                    more = self.q_store.get_nowait()
                    if more is _END:
                        ended = True
                        break
                    pending.extend(more)
            if pending and (ended or len(pending) >= size or self.q_store.empty()):
                await self._write(pending)
                pending = []

    async def _handle_now(self) -> Handle:
        """The job's handle as it is now (a migration may have started meanwhile)."""
        cols = self.d.collections
        return self.handle if cols is None else await cols.current(self.handle)

    async def _mirror(self, pictures: list[NewPicture]) -> None:
        """During a migration: the shadow pair gets the stored pictures too, encoded by
        its model."""
        if not pictures:
            return
        handle = await self._handle_now()
        if handle.shadow_encoder is not None:
            await self.writer.mirror(
                self.group, handle.shadow_encoder, pictures, metadata=self.job.metadata
            )

    async def _write(self, batch: list[Entry]) -> None:
        ready: list[tuple[Entry, NewPicture]] = []
        results: list[Result] = []
        for e in batch:
            try:
                # Blob before vector: a searchable image always has its file.
                put = self.writer.put_blob
                pending = (
                    e.blob if e.blob is not None else self._io(put, e.id, e.data, e.content_type)
                )
                new = await pending
            except Exception as exc:
                results.append((e.item.seq, "failed", e.id, blob_write_failed(exc).message))
                continue
            ready.append((e, e.picture(new)))
        if ready:
            marks = [(e.item.seq, e.id) for e, _ in ready]
            await self._io(self.d.jobs.mark_attempted, self.job.id, marks)
            pictures = [p for _, p in ready]
            failed = await self.writer.store_records(
                self.group,
                pictures,
                metadata=self.job.metadata,
                fingerprint=self.handle.info.fingerprint,
            )
            errors = {id(p): err.message for p, err in failed}
            await self._mirror([p for p in pictures if id(p) not in errors])
            for e, p in ready:
                if id(p) in errors:
                    results.append((e.item.seq, "failed", e.id, errors[id(p)]))
                else:
                    results.append((e.item.seq, "stored", e.id, None))
        await self.finish(results, batch)
