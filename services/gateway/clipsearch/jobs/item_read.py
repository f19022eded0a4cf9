"""Stage 1 of the ingest pipeline (:mod:`.pipeline`), one item: its bytes, from a URL (the
job's :class:`~clipsearch.jobs.fetch.Fetcher`), a path under the allowed roots or a
spooled upload, checked (size, image type) and hashed into its content id.

Every read has a deadline (the fetcher keeps its own, counted from the connection): a
stalled file leaves its thread behind, not the job; reads run on their own pool for that
reason. Whatever goes wrong is the item's error message, never an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from clipsearch.core.config import Settings
from clipsearch.jobs.entry import Entry
from clipsearch.jobs.fetch import Fetcher, FetchError, sniff_image_type
from clipsearch.jobs.paths import PathRefused, read_checked, read_regular
from clipsearch.jobs.store import Item

T = TypeVar("T")
_HASH_INLINE = 256 * 1024


def fetcher_for(cfg: Settings) -> Fetcher:
    """The URL fetcher of one job, limited as the settings say."""
    return Fetcher(
        allow_networks=cfg.fetch_allow_networks,
        max_bytes=cfg.fetch_max_bytes,
        timeout_s=cfg.fetch_timeout_s,
        max_redirects=cfg.fetch_max_redirects,
        max_connections=cfg.fetch_concurrency,
        per_host=cfg.fetch_per_host_connections,
    )


async def _in(pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


async def read_item(
    fetcher: Fetcher, item: Item, cfg: Settings, reads: ThreadPoolExecutor, io: ThreadPoolExecutor
) -> Entry | str:
    """The item's bytes and content id, or an error message; file reads on ``reads``,
    hashing a large picture on ``io``."""
    deadline = cfg.ingest_read_timeout_s or None
    try:
        if item.kind == "url":
            data = (await fetcher.fetch(item.source)).data
        elif item.kind == "path":
            async with asyncio.timeout(deadline):
                path = Path(item.source)
                data = await _in(reads, read_checked, path, cfg.ingest_roots, cfg.max_upload_bytes)
        else:
            if not item.spool:
                return "upload has no spooled file"
            async with asyncio.timeout(deadline):
                spool = Path(item.spool)
                data = await _in(reads, read_regular, spool, cfg.max_upload_bytes + 1)
    except TimeoutError:
        return f"read timed out after {deadline:g} s"
    except FetchError as exc:
        return f"fetch {exc.reason}: {exc}"
    except PathRefused as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not data:
        return "empty file"
    if len(data) > cfg.max_upload_bytes:
        return f"file is {len(data)} bytes, more than the limit of {cfg.max_upload_bytes}"
    content_type = sniff_image_type(data)
    if content_type is None:
        return "unsupported format (not JPEG, PNG, GIF, WebP, BMP or TIFF)"
    if len(data) < _HASH_INLINE:  # microseconds: cheaper than a hop to a thread
        digest = hashlib.sha256(data).hexdigest()
    else:
        digest = await _in(io, lambda: hashlib.sha256(data).hexdigest())
    return Entry(item=item, data=data, id=digest, content_type=content_type)
