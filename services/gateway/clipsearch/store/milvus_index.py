"""Index build progress of a :class:`~clipsearch.store.milvus.MilvusStore` group: whether
Milvus has built the vector index over every row yet.

After a bulk write and a flush, Milvus builds the HNSW index of each sealed segment in the
background (Lite in its own process, a server on its index node); until then those rows are
searched without it (brute force on Lite, an interim index on a server). ``describe_index``
reports ``indexed_rows`` and ``total_rows`` (and ``pending_index_rows``) on Lite 3.2.2 and
standalone 2.3.5: the index is complete when the two agree. Benchmarks wait for that instead
of for the latency to stop falling.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from clipsearch.store.protocol import Target

if TYPE_CHECKING:
    from clipsearch.store.milvus import MilvusStore


def index_progress(store: MilvusStore, group: str, target: Target) -> tuple[int, int]:
    """``(indexed_rows, total_rows)`` of the vector index of ``group``'s ``target``."""
    name = store.collection(group, target)
    with store._call("describe index") as c:
        info = c.describe_index(name, "vector")
    return int(info.get("indexed_rows") or 0), int(info.get("total_rows") or 0)


def wait_indexed(
    store: MilvusStore,
    group: str,
    target: Target,
    *,
    rows: int,
    timeout_s: float = 600.0,
    poll_s: float = 0.5,
) -> float:
    """Wait until the index covers ``rows`` rows (at least) and every row it knows of; the
    seconds it took. Raises :class:`TimeoutError` past ``timeout_s``."""
    started = time.monotonic()
    while True:
        indexed, total = index_progress(store, group, target)
        if total >= rows and indexed >= total:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"index of {group}/{target}: {indexed} of {total} rows built")
        time.sleep(poll_s)
