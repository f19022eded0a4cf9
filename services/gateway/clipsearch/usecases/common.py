"""Small pure helpers the use-cases share: ids, text normalisation, input checks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread

from clipsearch.core.errors import InvalidRequest
from clipsearch.core.names import COLLECTION_RE
from clipsearch.store import filter_grammar
from clipsearch.store.milvus_expr import metadata_filter
from clipsearch.store.protocol import Filter, InvalidStoreRequest

T = TypeVar("T")
log = logging.getLogger(__name__)


async def to_the_end(work: Awaitable[T]) -> T:
    """Await ``work`` in a task of its own that a cancellation of the caller (a client gone
    mid-request, a job cancelled) does not stop: the caller still waits for it to finish,
    then the cancellation goes on. For writes that must not stop half-way."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():  # the work itself was cancelled (or failed meanwhile)
                raise
            cancelled = True  # ours, not the work's: wait for the work, then go on
    if cancelled:
        raise asyncio.CancelledError
    return result


async def run_sync(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call (pymilvus, Pillow, disk) in a worker thread."""
    return await to_thread.run_sync(partial(func, *args, **kwargs))


def image_id_of(data: bytes) -> str:
    """Content address of an image: the same bytes are stored once."""
    return hashlib.sha256(data).hexdigest()


def normalise_text(text: str) -> str:
    """NFC, whitespace runs collapsed to one space, trimmed: the form ids are taken over."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def text_id_of(text: str, image_id: str = "") -> str:
    """A text's id: the normalised text plus the image it describes, if any."""
    payload = normalise_text(text) + "\x00" + image_id
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check_text(text: str, *, max_chars: int, what: str = "text") -> str:
    """The normalised text, or :class:`InvalidRequest` when empty or too long."""
    norm = normalise_text(text)
    if not norm:
        raise InvalidRequest(f"{what} is empty", code="empty_text")
    if len(norm) > max_chars:
        raise InvalidRequest(
            f"{what} is {len(norm)} characters, more than the limit of {max_chars}",
            code="text_too_long",
            details={"max_chars": max_chars},
        )
    return norm


def check_collection_name(name: str) -> str:
    if not COLLECTION_RE.match(name):
        raise InvalidRequest(
            f"invalid collection name {name!r}: use 1-64 letters, digits or underscores",
            code="invalid_collection",
        )
    return name


def check_filter(raw: Filter | None) -> Filter | None:
    """Validate a metadata filter against the grammar of
    :mod:`clipsearch.store.filter_grammar` (scalars, lists, operator objects); empty means
    none. A bad one is :class:`InvalidRequest` ``invalid_filter`` (unknown operator, a
    value of the wrong type, a bad field name, too many fields or values)."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest("filter must be a JSON object", code="invalid_filter")
    try:
        filter_grammar.parse(raw)
        metadata_filter(raw)  # the literals too: string length, int64 range, finite floats
    except InvalidStoreRequest as exc:
        raise InvalidRequest(str(exc), code="invalid_filter") from exc
    return raw


async def each_alone_on_failure(
    items: list[T], write: Callable[[list[T]], Awaitable[None]]
) -> list[tuple[T, Exception]]:
    """``write(items)`` in one call; if that fails, ``write([item])`` for each item, so one
    bad item fails alone. Returns the items that failed on their own, with the error."""
    if not items:
        return []
    try:
        await write(items)
        return []
    except Exception as exc:
        if len(items) == 1:
            log.error("write failed: %s", exc)
            return [(items[0], exc)]
        log.warning("batch write of %d items failed (%s); retrying one by one", len(items), exc)
    failed: list[tuple[T, Exception]] = []
    for item in items:
        try:
            await write([item])
        except Exception as exc:
            log.error("write failed: %s", exc)
            failed.append((item, exc))
    return failed
