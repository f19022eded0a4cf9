"""The search log port: one JSON object per search, handed to a :class:`SearchLog`.

:func:`record_search` builds the line (time, collection, target, the query's text or the
sha256 of its image, or the stored ``image_id``, the top ids and scores, the latency, the
count of hits, and ``expansions``: the texts a query was expanded into, ``null`` where it
did not ask for expansion or nothing matched) and hands it over. It never raises: a log
that fails (disk full, a file made unwritable) must never fail the search it records. The
file adapter is :class:`clipsearch.store.search_log.RotatingSearchLog`; off, it is
:data:`NO_SEARCH_LOG`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from clipsearch.usecases.common import image_id_of

if TYPE_CHECKING:
    from clipsearch.usecases.search import Query, SearchOptions, SearchResult

log = logging.getLogger(__name__)
TOP_IN_LOG = 10  # ids and scores kept per query: enough to see what was found


@runtime_checkable
class SearchLog(Protocol):
    """Where the lines go. ``write`` must not block for long (no network, no fsync)."""

    enabled: bool

    def write(self, entry: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class _NoSearchLog:
    enabled = False

    def write(self, entry: Mapping[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None


NO_SEARCH_LOG: SearchLog = _NoSearchLog()


def _query_fields(query: Query) -> dict[str, Any]:
    if query.text is not None:
        return {"query": query.text}
    if query.weighted is not None:  # weighted terms: {text: weight}
        return {"query": dict(query.weighted)}
    if query.image_id is not None:
        return {"image_id": query.image_id}
    data = query.image
    if data is None and query.image_base64 is not None:
        raw = query.image_base64
        text = raw.partition(",")[2] if raw.startswith("data:") else raw
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            data = None
    return {"image_sha256": image_id_of(data) if data is not None else None}


def search_entries(
    collection: str,
    queries: Sequence[Query],
    opts: SearchOptions,
    result: SearchResult,
    expansions: Sequence[Sequence[str] | None] | None = None,
) -> list[dict[str, Any]]:
    """One entry per query of the search (a batch of n is n lines, ``batch: n``)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    entries = []
    for i, (query, hits) in enumerate(zip(queries, result.hits, strict=True)):
        top = hits[:TOP_IN_LOG]
        entries.append(
            {
                "time": stamp,
                "collection": collection,
                "target": opts.target,
                **_query_fields(query),
                "expansions": list(expansions[i] or []) or None if expansions else None,
                "top_k": opts.top_k,
                "offset": opts.offset,
                "filter": opts.filter or None,
                "hits": len(hits),
                "top_ids": [h.id for h in top],
                "top_scores": [round(float(h.score), 6) for h in top],
                "latency_ms": round(result.took_ms, 3),
                "batch": len(queries),
            }
        )
    return entries


def record_search(
    sink: SearchLog,
    collection: str,
    queries: Sequence[Query],
    opts: SearchOptions,
    result: SearchResult,
    expansions: Sequence[Sequence[str] | None] | None = None,
) -> None:
    """Hand the search's lines to ``sink``; any failure is logged, never raised."""
    if not sink.enabled:
        return
    try:
        for entry in search_entries(collection, queries, opts, result, expansions):
            sink.write(entry)
    except Exception as exc:  # the search succeeded; its log line must not undo that
        log.warning("search log: line not written: %s", exc)
