"""Every record of a collection in primary-key order, a page at a time, from a cursor.

Browse, export and delete-by-filter walk a collection with this instead of ``offset``
(capped by Milvus at offset + limit <= 16,384, and re-reading everything before the offset
on each page). It is keyset paging on the primary key: ``id > "<last id>" and (<filter>)``
with a limit, the next page starting after the last id of this one. That needs each
answer to be the *smallest* ids that match, which is what was measured:

- Milvus standalone 2.3.5 answers a limited query sorted by primary key.
- Milvus Lite 3.2.2 does not: ``query(limit=1000)`` gives an arbitrary 1,000 of the
  matches, so a walk skips and repeats records (20,000 rows: 2,514 seen, 2,103 distinct).
  With the query parameter ``iterator=True`` (what pymilvus' own ``query_iterator``
  sends) Lite answers the smallest ids, sorted, too; so every query here sends it.
- ``query_iterator`` itself works on both, but each new one costs a describe and an extra
  query (and logs a warning on Lite, which has no MVCC timestamp to hand out), and a
  browse page is a new request each time: the same keyset query, done directly, is one
  call per page. Its ``reduce_stop_for_best`` is not sent: it may answer fewer rows than
  the limit while more exist, so this loop only stops on an empty answer.

Lite matches JSON ``true`` to ``1``: rows are checked again, typed
(:mod:`.typed_filter`), and a page that lost rows to the check is topped up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from clipsearch.store import milvus_expr as expr
from clipsearch.store import typed_filter
from clipsearch.store.milvus_schema import OUTPUT_FIELDS
from clipsearch.store.protocol import Filter, InvalidStoreRequest, ScanPage

MAX_SCAN_LIMIT = 16384  # Milvus' cap on one query's limit
# With a typed re-check a batch may lose rows: ask for at least this many at a time, and
# read at most SCAN_BUDGET rows for one page (a short page then says where to go on), so a
# filter that Lite over-matches a million times still answers each page in bounded time.
TYPED_MIN_BATCH = 1024
SCAN_BUDGET = 100_000

# (expression, limit) -> rows, ids ascending
QueryFn = Callable[[str, int], list[dict[str, Any]]]
# MilvusStore._call: ``with call("what") as client`` (locking, errors as StoreError)
CallFn = Callable[[str], contextlib.AbstractContextManager[Any]]
IMAGES_PER_QUERY = 100  # linked texts are asked for this many images at a time


def keyset_query(call: CallFn, name: str, fields: list[str], reads: dict[str, Any]) -> QueryFn:
    """The limited query of :func:`scan_pages` on collection ``name``."""

    def query(where: str, limit: int) -> list[dict[str, Any]]:
        with call("scan") as c:
            return list(
                c.query(
                    name,
                    filter=where,
                    limit=limit,
                    output_fields=fields,
                    iterator="True",  # the smallest ids, sorted, on Lite too
                    **reads,
                )
            )

    return query


def texts_of_images(
    call: CallFn, name: str, image_ids: Sequence[str], reads: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every text row linked to one of ``image_ids`` (a page of browsed images' captions)."""
    fields = OUTPUT_FIELDS["texts"]
    wanted = sorted({i for i in image_ids if isinstance(i, str) and i})
    rows: list[dict[str, Any]] = []
    for start in range(0, len(wanted), IMAGES_PER_QUERY):
        part = wanted[start : start + IMAGES_PER_QUERY]
        with call("query linked texts") as c:
            where = expr.ids_expr(part, field="image_id")
            rows.extend(c.query(name, filter=where, output_fields=fields, **reads))
    return shape_rows(rows, fields)


def check_scan(after: str, limit: int) -> None:
    if not isinstance(after, str):
        raise InvalidStoreRequest("scan cursor must be a string")
    if not 1 <= limit <= MAX_SCAN_LIMIT:
        raise InvalidStoreRequest(f"scan limit must be between 1 and {MAX_SCAN_LIMIT}")


def after_expr(after: str, where: str) -> str:
    """``id > "<after>"`` (everything when ``after`` is empty) and the filter."""
    return expr.and_all(f"id > {expr.string_literal(after)}" if after else 'id != ""', where)


def scan_pages(
    query: QueryFn, filters: Filter | None, *, after: str, limit: int, fields: list[str]
) -> ScanPage:
    """Up to ``limit`` matching rows after ``after``, in id order, through ``query``.

    One row past the page is looked for, so ``next_after`` is None exactly when nothing
    matching follows (no empty last page). A page cut short by :data:`SCAN_BUDGET` has
    fewer rows and a ``next_after`` (the last id read) all the same.
    """
    check_scan(after, limit)
    where = expr.metadata_filter(filters)
    typed = typed_filter.needs_check(filters)
    out: list[dict[str, Any]] = []
    cursor = after
    scanned = 0
    while len(out) <= limit:
        if scanned >= SCAN_BUDGET:
            return ScanPage(rows=shape_rows(out, fields), next_after=cursor)
        ask = limit + 1 - len(out)
        if typed:
            ask = max(ask, TYPED_MIN_BATCH)
        rows = sorted(query(after_expr(cursor, where), min(ask, MAX_SCAN_LIMIT)), key=_id)
        if not rows:
            break
        cursor = str(rows[-1]["id"])
        scanned += len(rows)
        if typed:
            rows = [r for r in rows if typed_filter.matches(r.get("metadata"), filters)]
        out.extend(rows)
    page = out[:limit]
    more = len(out) > limit
    nxt = str(page[-1]["id"]) if more else None
    return ScanPage(rows=shape_rows(page, fields), next_after=nxt)


def shape_rows(rows: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    """Only ``fields`` of each row, a ``vector`` as float32."""
    shaped = []
    for row in rows:
        r = {k: row.get(k) for k in fields}
        if "vector" in r:
            r["vector"] = np.asarray(r["vector"], dtype=np.float32)
        shaped.append(r)
    return shaped


def _id(row: dict[str, Any]) -> str:
    return str(row["id"])
