"""Search pages in a stable order, at any depth: the paging half of ``MilvusStore.search``.

Order: by score, best first, ties by id. Milvus orders ties as it finds them, so every page
is cut out of a slightly wider window that is sorted here (:data:`TIE_MARGIN` hits on each
side); tie groups up to that size never make pages overlap or skip.

Depth: Milvus caps ``offset + limit`` at 16,384. Deeper pages are read by *score keyset*
paging: after a batch of ``limit`` hits whose lowest score is ``s``, the next batch is a
range search (``range_filter = s``, inclusive upper bound; ``radius = -1``), the hits of
score ``s`` held back from the first batch so a tie group is read whole. Measured on Lite
3.2.2 and standalone 2.3.5 (pymilvus 3.0.2), 40,000 clustered 16-d vectors: the range
batch is the exact next 16,384 on FLAT, and on HNSW once ``ef`` covers the depth read so
far plus the batch (with ``ef`` = the batch alone, Lite's recall was 0.84). pymilvus'
``search_iterator`` was not used: neither server has iterator v2, and its v1 fallback
(range searches too) stopped after 5,389 of 18,000 hits on Lite HNSW ("probe exceed max
try times"; standalone and Lite FLAT returned all 18,000).

Hits of a deep search carry only the fields the typed re-check needs; the store fetches the
page's fields by id afterwards (16,384 rows of metadata per batch are not worth moving).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from clipsearch.store import filter_grammar
from clipsearch.store.milvus_schema import hits_from_raw
from clipsearch.store.protocol import Filter, Hit
from clipsearch.store.typed_filter import matches_all, needs_check

MAX_TOPK = 16384  # Milvus: nq, limit and limit + offset of one search
TIE_MARGIN = 16  # hits read past each end of a page, so ties at its edges sort right
# Scores of one stored vector agree between calls; this slack covers a backend that
# computes them along two paths (growing vs indexed segment) that round differently.
SCORE_SLACK = 1e-6

# (queries, fields, limit, skip, upper=, depth=) -> raw pymilvus results: one search.
SearchCall = Callable[..., Any]
# ids -> their stored rows (the store's get).
Fetch = Callable[[list[str]], list[dict[str, Any]]]
# (limit, skip) -> hits of every query, best first (one plain search).
RunWindow = Callable[[int, int], list[list[Hit]]]
# (limit, upper, depth) -> hits of one query with score <= upper (None: no bound), best
# first; depth = hits already read above upper (the HNSW ef must cover depth + limit).
RunRange = Callable[[int, float | None, int], list[Hit]]


def search(
    call: SearchCall,
    fetch: Fetch,
    queries: npt.NDArray[np.float32],
    fields: list[str],
    *,
    top_k: int,
    offset: int,
    filter: Filter | None,
    min_score: float | None,
) -> list[list[Hit]]:
    """``MilvusStore.search`` once its arguments are checked: a plain search for a shallow
    page, else score keyset paging per query. Filters naming booleans or numbers are
    re-checked typed (Lite matches ``true`` to 1, see :mod:`.typed_filter`): a shallow page
    is tried batched first, and only a query the check left short reads on by keyset."""
    typed = needs_check(filter)
    shallow = is_shallow(top_k, offset)
    if shallow and not typed:

        def window(limit: int, skip: int) -> list[list[Hit]]:
            return hits_from_raw(call(queries, fields, limit, skip), fields, min_score)

        return shallow_pages(window, top_k=top_k, offset=offset)

    conditions = filter_grammar.parse(filter)  # once, not per hit

    def accept(hit: Hit) -> bool:
        return not typed or matches_all(hit.fields.get("metadata"), conditions)

    pages: list[list[Hit] | None] = [None] * len(queries)
    if shallow:
        limit = offset + top_k + TIE_MARGIN
        for i, hits in enumerate(hits_from_raw(call(queries, fields, limit, 0), fields, min_score)):
            kept = [h for h in sorted(hits, key=order_key) if accept(h)]
            # Complete when Milvus had no more, or a tie margin is left past the page.
            if len(hits) < limit or len(kept) >= limit:
                pages[i] = kept[offset : offset + top_k]
    slim = ["metadata"] if typed else []
    deep: dict[int, list[Hit]] = {}
    for i, query in enumerate(queries):
        if pages[i] is not None:
            continue

        def ranged(
            limit: int, upper: float | None, depth: int, q: npt.NDArray[np.float32] = query
        ) -> list[Hit]:
            raw = call(q[None, :], slim, limit, 0, upper=upper, depth=depth)
            return hits_from_raw(raw, slim, None)[0]

        deep[i] = deep_page(ranged, top_k=top_k, offset=offset, accept=accept, min_score=min_score)
    rows = fetch([h.id for page in deep.values() for h in page]) if deep else []
    for i, page in zip(deep, with_fields(list(deep.values()), rows, fields), strict=True):
        pages[i] = page
    return [p or [] for p in pages]


def order_key(hit: Hit) -> tuple[float, str]:
    return (-hit.score, hit.id)


def is_shallow(top_k: int, offset: int) -> bool:
    """True when one plain search can answer the page with its tie margin."""
    return offset + top_k + TIE_MARGIN <= MAX_TOPK


def shallow_pages(run: RunWindow, *, top_k: int, offset: int) -> list[list[Hit]]:
    """Every query's page ``[offset, offset + top_k)`` from one plain search of a window
    ``TIE_MARGIN`` wider on each side, sorted by :func:`order_key`."""
    skip = max(0, offset - TIE_MARGIN)
    limit = offset + top_k + TIE_MARGIN - skip
    start = offset - skip
    return [sorted(hits, key=order_key)[start : start + top_k] for hits in run(limit, skip)]


def deep_page(
    run: RunRange,
    *,
    top_k: int,
    offset: int,
    accept: Callable[[Hit], bool] | None = None,
    min_score: float | None = None,
    batch: int = MAX_TOPK,
) -> list[Hit]:
    """One query's page ``[offset, offset + top_k)`` of the hits that ``accept`` keeps,
    read batch after batch by score keyset (see the module docstring).

    Memory: one batch and the page. ``batch`` is the most hits per call (tests use less).
    """
    want = offset + top_k
    page: list[Hit] = []
    kept = 0  # accepted hits so far, in order
    upper: float | None = None
    depth = 0
    recent: set[str] = set()  # ids given out whose score is within the slack of `upper`
    limit = min(batch, want + TIE_MARGIN)
    while kept < want:
        raw = run(limit, upper, depth)
        full = len(raw) >= limit  # else the store has no more hits in the range
        hits = sorted((h for h in raw if h.id not in recent), key=order_key)
        if full and hits:
            low = hits[-1].score
            use = [h for h in hits if h.score > low]
            if not use:  # a whole batch of one score: give it out, go strictly below
                use, next_upper = hits, math.nextafter(low, -math.inf)
            else:
                next_upper = low + SCORE_SLACK
        else:
            use, next_upper = hits, None
        for hit in use:
            if min_score is not None and hit.score < min_score:
                return page
            if accept is not None and not accept(hit):
                continue
            if kept >= offset:
                page.append(hit)
            kept += 1
            if kept >= want:
                return page
        if next_upper is None:
            return page
        depth += len(use)
        recent = {h.id for h in use if h.score <= next_upper}
        upper = next_upper
        limit = batch
    return page


def search_params(hnsw_ef: int | None, depth: int, upper: float | None) -> dict[str, Any]:
    """Milvus ``search_params`` of a search reaching ``depth`` hits (``hnsw_ef``: the
    configured HNSW ef, None for FLAT); ``upper``: a range search of scores <= it."""
    params: dict[str, Any] = {}
    if hnsw_ef is not None:
        # HNSW cannot return more than ef candidates: widen ef for deep pages.
        params["ef"] = max(hnsw_ef, depth)
    if upper is not None:
        # COSINE range search: radius < score <= range_filter; -1 is the lowest score.
        params |= {"radius": -1.0 - SCORE_SLACK, "range_filter": upper}
    return {"metric_type": "COSINE", "params": params}


def with_fields(
    pages: list[list[Hit]], rows: list[dict[str, Any]], fields: list[str]
) -> list[list[Hit]]:
    """Deep pages with their hits' ``fields`` from ``rows`` (read by id afterwards); a hit
    whose row is gone by then (deleted meanwhile) is dropped."""
    by_id = {str(r["id"]): r for r in rows}
    return [
        [
            Hit(h.id, h.score, {k: by_id[h.id].get(k) for k in fields if k != "id"})
            for h in page
            if h.id in by_id
        ]
        for page in pages
    ]
