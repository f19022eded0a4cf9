"""Read consistency of :class:`~clipsearch.store.milvus.MilvusStore`: the ``consistency_level``
every read passes (setting ``CLIPSEARCH_MILVUS_CONSISTENCY``, default ``session``).

Why not Strong: a Strong read asks the server for a fresh timestamp and waits until every
query node has consumed the log up to it, which happens on the server's time tick (200 ms on
standalone 2.3.5): measured p50 200 ms per search at 10k and 100k alike, against ~3.4 ms with
Session (field notes; ``tests/store/test_milvus_consistency.py`` prints it again).

What Session guarantees, from pymilvus 3.0.2 (``client/ts_utils.py``): every insert, upsert
and delete records the timestamp the server gave the write in a process-wide cache keyed by
(server, database, collection); a Session read of that collection passes that timestamp as
its guarantee timestamp, so the server answers once it has applied *this process's* last
write to it, and at once otherwise (the query nodes are then at most a time tick behind). The
gateway is one process with one client, its ingest jobs run in it, and ``POST /v1/images``
returns after its upsert: a search after either finds those pictures (the standalone test
loops on it). A write made by *another* process (a second gateway on the same server) is seen
once the server has applied it, a few hundred ms later, as with Bounded.

Deletes are the exception, measured on standalone 2.3.5: a delete by filter answers no
timestamp newer than the last upsert's, so a Session read right after it still saw the
deleted rows. Once one Strong read of the collection has returned, every later read sees the
delete (the server reads at its current time, the guarantee only says how long to wait). So
on a server :func:`await_delete` makes a delete return only once it is visible: one small
Strong query after it, ~one time tick (200 ms) per delete call, not per search.

Milvus Lite applies a write before the call returns, so every level reads it there (the
tests pass on Lite at each level used); its latency showed no consistent difference between
Session and Strong (two runs of the latency test: 7.4 vs 22.3 ms, 10.9 vs 3.4 ms: noise).

``strong`` stays available for deployments where several writers share one server and each
must read the others' writes at once; ``bounded`` reads a snapshot up to a few seconds old
(Milvus' default) and gives up read-your-writes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from clipsearch.store import milvus_expr as expr
from clipsearch.store.protocol import InvalidStoreRequest

LEVELS = {"session": "Session", "bounded": "Bounded", "strong": "Strong"}


def read_options(level: str) -> dict[str, Any]:
    """The keyword arguments a read passes to pymilvus for ``level`` (session/bounded/strong)."""
    try:
        return {"consistency_level": LEVELS[level.lower()]}
    except KeyError:
        raise InvalidStoreRequest(
            f"unknown Milvus consistency {level!r}: one of {sorted(LEVELS)}"
        ) from None


def await_delete(
    call: Callable[[str], AbstractContextManager[Any]],
    reads: dict[str, Any],
    kind: str,
    name: str,
    some_id: str,
) -> None:
    """After a delete from collection ``name`` (``some_id`` one of the deleted ids), return
    once later reads of this level see it: a no-op on Lite and when reads are Strong."""
    if kind == "lite" or reads.get("consistency_level") == "Strong":
        return
    strong = reads | {"consistency_level": "Strong"}
    with call("await delete") as c:
        c.query(name, filter=expr.ids_expr([some_id]), output_fields=["id"], **strong)
