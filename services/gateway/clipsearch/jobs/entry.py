"""What flows through the ingest pipeline (:mod:`clipsearch.jobs.pipeline`), and the small
helpers its stages share."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
import numpy.typing as npt

from clipsearch.core.config import Settings
from clipsearch.core.redact import redact_credentials
from clipsearch.encoder.protocol import Encoder
from clipsearch.jobs.spool import Spool
from clipsearch.jobs.store import Item, ItemStatus, JobStore
from clipsearch.store.protocol import VectorStore
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.picture_writes import NewPicture

# (seq, final status, content id, error) of one item, as JobStore.finish_items takes them.
Result = tuple[int, ItemStatus, str | None, str | None]


@dataclass(slots=True)
class Entry:
    """One item on its way: its bytes, content id and what the stages add to it."""

    item: Item
    data: bytes
    id: str
    content_type: str = ""
    width: int = 0
    height: int = 0
    pixels: npt.NDArray[np.float32] | None = None
    vector: npt.NDArray[np.float32] | None = None
    captions: list[str] = field(default_factory=list)
    caption_vectors: list[npt.NDArray[np.float32]] = field(default_factory=list)
    # The blob write, started as soon as the picture decoded; the writer awaits it.
    # (True when it created the blob, so a failure may remove it again.)
    blob: asyncio.Future[bool] | None = None

    def public_source(self) -> str:
        """The ``source`` the stored record keeps: every reader sees it in hits and
        ``GET /v1/images/{id}``, so never a URL's credentials nor a server path (the
        file name; the job's own item keeps the path, shown to admins only)."""
        if self.item.kind == "path":
            return PurePath(self.item.source).name
        return redact_credentials(self.item.source)

    def picture(self, blob_is_new: bool) -> NewPicture:
        """The encoded entry as the write path takes it."""
        assert self.vector is not None
        return NewPicture(
            id=self.id,
            data=self.data,
            source=self.public_source(),
            content_type=self.content_type,
            width=self.width,
            height=self.height,
            vector=self.vector,
            captions=self.captions,
            caption_vectors=self.caption_vectors,
            metadata=self.item.metadata,
            blob_is_new=blob_is_new,
        )


@dataclass(slots=True)
class Deps:
    settings: Settings
    encoder: Encoder
    store: VectorStore
    blobs: Blobs
    jobs: JobStore
    spool: Spool
    collections: Collections | None = None  # resolves handles again (migrations)


def stub(item: Item) -> Entry:
    """An entry for an item that never got (or no longer has) its bytes."""
    return Entry(item=item, data=b"", id="")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def retrieved(fut: asyncio.Future[bool]) -> None:
    """Mark a blob write's error as seen: the writer reports it for its item, and an item
    failed earlier (encode) must not log 'exception was never retrieved'."""
    if not fut.cancelled():
        fut.exception()


def attach_vectors(
    batch: list[Entry],
    vectors: npt.NDArray[np.float32],
    text_vectors: npt.NDArray[np.float32] | None,
) -> None:
    """Give each entry of an encoded batch its image vector and its captions' vectors (all
    the batch's captions were encoded together, in order); the pixels are no longer needed."""
    k = 0
    for e, v in zip(batch, vectors, strict=True):
        e.vector, e.pixels, e.caption_vectors = v, None, []
        for _ in e.captions:
            assert text_vectors is not None
            e.caption_vectors.append(text_vectors[k])
            k += 1
