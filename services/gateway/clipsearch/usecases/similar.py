"""Near duplicates: the images most like a stored one, and groups of near-identical images.

``similar`` is a search with the stored vector of an image as the query, the image itself
left out. ``duplicates`` scans the collection in id order (the store's ``scan``), a bounded
number of images per call (``limit``, at most ``CLIPSEARCH_DUPLICATES_MAX_SCAN``; ``cursor``
resumes after the last one scanned): each scanned image's neighbours at ``min_score`` or
more (the ``CLIPSEARCH_DUPLICATES_NEIGHBOURS`` nearest) join it in a union-find; neighbours
outside the page's range are searched too (as many as the page scans, at most), so groups
are whole, and a group is reported by the page whose range holds its smallest id (never
twice across pages). Memory: one scan page of vectors and the images that have a near
duplicate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from clipsearch.core.config import Settings
from clipsearch.core.errors import InvalidRequest, NotFoundError
from clipsearch.store.protocol import Filter, Hit, VectorStore
from clipsearch.usecases.collections import Collections
from clipsearch.usecases.common import run_sync
from clipsearch.usecases.search import SearchOptions, SearchService

SCAN_PAGE = 1000  # ids with vectors per store read
SEARCH_BATCH = 64  # query vectors per store search
MAX_TOPK = 16384
MAX_CURSOR_BYTES = 64  # a cursor is an image id


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Near-identical images: the first is the group's reference (most pixels, then the
    earliest stored, then the smallest id); every score is cosine to it."""

    members: list[Hit]


@dataclass(frozen=True, slots=True)
class DuplicatesPage:
    groups: list[DuplicateGroup]
    scanned: int
    next_cursor: str | None
    took_ms: float


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def check_min_score(value: float) -> float:
    if not -1.0 <= value <= 1.0:
        raise InvalidRequest("min_score must be within [-1, 1]", code="invalid_min_score")
    return value


class SimilarService:
    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        collections: Collections,
        search: SearchService,
    ) -> None:
        self._settings = settings
        self._store = store
        self._collections = collections
        self._search = search

    async def similar(
        self,
        collection: str,
        image_id: str,
        *,
        top_k: int = 10,
        min_score: float | None = None,
        filter: Filter | None = None,
    ) -> tuple[list[Hit], float]:
        """The images nearest to the stored ``image_id`` (itself excluded), best first, and
        the time taken in ms. 404 ``image_not_found`` for an id not in the collection."""
        started = time.perf_counter()
        opts = SearchOptions(top_k=top_k, min_score=min_score, filter=filter)
        self._search.check_options(opts)
        group = await self._collections.for_read(collection)
        rows = await run_sync(self._store.get, group, "images", [image_id], with_vectors=True)
        if not rows:
            raise NotFoundError(
                f"image {image_id!r} not found in collection {group!r}", code="image_not_found"
            )
        query = np.asarray(rows[0]["vector"], dtype=np.float32)
        hits = await run_sync(
            self._store.search,
            group,
            "images",
            query,
            top_k=min(top_k + 1, MAX_TOPK),  # one more: the image itself is among them
            filter=opts.filter or None,
            min_score=min_score,
        )
        out = [h for h in hits[0] if h.id != image_id][:top_k]
        return out, (time.perf_counter() - started) * 1000.0

    async def duplicates(
        self,
        collection: str,
        *,
        min_score: float = 0.95,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> DuplicatesPage:
        """One page of duplicate groups, largest first (see the module docstring)."""
        started = time.perf_counter()
        check_min_score(min_score)
        cap = self._settings.duplicates_max_scan
        limit = cap if limit is None else limit
        if not 1 <= limit <= cap:
            raise InvalidRequest(
                f"limit (images scanned per page) must be within [1, {cap}]",
                code="invalid_limit",
                details={"duplicates_max_scan": cap},
            )
        cursor = cursor or ""
        if len(cursor.encode("utf-8")) > MAX_CURSOR_BYTES:
            raise InvalidRequest("cursor is not one this API gave out", code="invalid_cursor")
        group = await self._collections.for_read(collection)
        page = await run_sync(self._scan, group, min_score, limit, cursor)
        took = (time.perf_counter() - started) * 1000.0
        return DuplicatesPage(page.groups, page.scanned, page.next_cursor, took)

    def _neighbours(
        self, group: str, ids: list[str], vectors: np.ndarray, min_score: float, uf: _UnionFind
    ) -> set[str]:
        """Join each of ``ids`` with its neighbours at ``min_score`` or more; the ids met."""
        k = min(self._settings.duplicates_neighbours + 1, MAX_TOPK)
        met: set[str] = set()
        for start in range(0, len(ids), SEARCH_BATCH):
            part = vectors[start : start + SEARCH_BATCH]
            hits = self._store.search(group, "images", part, top_k=k, min_score=min_score)
            for image_id, row in zip(ids[start : start + SEARCH_BATCH], hits, strict=True):
                for h in row:
                    if h.id != image_id:
                        uf.union(image_id, h.id)
                        met.add(h.id)
        return met

    def _scan(self, group: str, min_score: float, limit: int, cursor: str) -> DuplicatesPage:
        uf = _UnionFind()
        scanned, after, end = 0, cursor, False
        while scanned < limit and not end:
            page = self._store.scan(
                group,
                "images",
                after=after,
                limit=min(SCAN_PAGE, limit - scanned),
                with_vectors=True,
            )
            rows, end = page.rows, page.next_after is None
            if not rows:
                break
            ids = [str(r["id"]) for r in rows]
            self._neighbours(group, ids, np.stack([r["vector"] for r in rows]), min_score, uf)
            scanned += len(rows)
            after = ids[-1]
        end = end or scanned == 0

        def in_range(i: str) -> bool:
            return cursor < i <= after

        # Members outside this page's range: their own neighbours complete the groups.
        searched: set[str] = set()
        frontier = [i for i in uf.parent if not in_range(i)]
        # Bounded like the scan itself: a low min_score could chain the whole collection.
        while frontier and len(searched) < limit:
            frontier = frontier[: limit - len(searched)]
            searched.update(frontier)
            rows = self._store.get(group, "images", frontier, with_vectors=True)
            if not rows:
                break
            ids = [str(r["id"]) for r in rows]
            met = self._neighbours(group, ids, np.stack([r["vector"] for r in rows]), min_score, uf)
            frontier = [i for i in met if not in_range(i) and i not in searched]
        components: dict[str, list[str]] = {}
        for i in list(uf.parent):
            components.setdefault(uf.find(i), []).append(i)
        # The union-find root is the smallest id: the page whose range holds it reports it.
        wanted = [sorted(m) for root, m in components.items() if in_range(root)]
        groups = [self._group(group, members) for members in wanted]
        groups.sort(key=lambda g: (-len(g.members), g.members[0].id))
        return DuplicatesPage(groups, scanned, None if end else after, 0.0)

    def _group(self, group: str, members: list[str]) -> DuplicateGroup:
        rows = self._store.get(group, "images", members, with_vectors=True)
        rows.sort(
            key=lambda r: (
                -int(r.get("width") or 0) * int(r.get("height") or 0),
                int(r.get("created_at") or 0),
                str(r["id"]),
            )
        )
        ref = np.asarray(rows[0]["vector"], dtype=np.float32)
        ref = ref / (np.linalg.norm(ref) or 1.0)
        hits = []
        for r in rows:
            v = np.asarray(r["vector"], dtype=np.float32)
            score = float(ref @ v / (np.linalg.norm(v) or 1.0))
            fields = {k: val for k, val in r.items() if k not in ("id", "vector")}
            hits.append(Hit(str(r["id"]), score, fields))
        head, rest = hits[0], sorted(hits[1:], key=lambda h: (-h.score, h.id))
        return DuplicateGroup([head, *rest])
