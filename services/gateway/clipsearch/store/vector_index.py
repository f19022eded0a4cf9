"""The vectors of one collection of :class:`~clipsearch.store.faiss_store.FaissStore`.

Vectors live by *position* in one float32 matrix; an upsert of a stored id appends it
anew and marks the old position dead. A search is exact (one matrix product, every live
row) unless the collection is HNSW-indexed and large enough (``exact_max``), when faiss
``IndexHNSWFlat`` (inner product over unit copies = cosine) answers for the positions it
covers and the newest rows past them (its *tail*) are scored exactly; dead positions are
masked out with an ``IDSelectorBitmap``. Either way candidates are re-scored from the
matrix and ordered by score, ties by id, as ``MilvusStore`` orders them.

The HNSW graph is built away from the caller: :meth:`VectorIndex.build_hnsw` runs in a
background thread (exact search until it is done); rows written meanwhile are its tail
until they are added in small chunks. faiss does not allow adding while searching, so one lock per
collection covers both; a search holds it for well under a millisecond at 100k.

Thread safety: every public method takes the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]

CATCH_UP_CHUNK = 512  # rows added to the graph per lock hold while it catches up
REBUILD_DEAD_SHARE = 0.5  # rebuild the graph when this share of its positions is dead


def _faiss() -> Any:
    """faiss (it comes with milvus-lite); its stubs lack the search parameters used here."""
    import faiss  # type: ignore[import-untyped,unused-ignore]

    return faiss


def _unit(x: Matrix) -> Matrix:
    """Rows scaled to length 1; rows already of length 1 (as encoders return them) keep
    their exact values, so scores are the plain dot products a caller would compute."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    scale = np.where((norms == 0) | (np.abs(norms - 1.0) < 1e-5), 1.0, norms)
    out: Matrix = (x / scale).astype(np.float32)
    return out


class VectorIndex:
    """One collection's vectors, searched exactly or through faiss HNSW (see module)."""

    def __init__(self, dim: int, *, hnsw: dict[str, Any] | None, ef: int, exact_max: int) -> None:
        self.dim = dim
        self._hnsw_params = hnsw  # {"M", "efConstruction"}; None: FLAT (always exact)
        self._ef = ef
        self._exact_max = exact_max
        self._lock = threading.Lock()
        self._unit: Matrix = np.zeros((16, dim), dtype=np.float32)
        self._alive: npt.NDArray[np.bool_] = np.zeros(16, dtype=bool)
        self._ids: list[str | None] = []
        self._pos: dict[str, int] = {}
        self._graph: Any = None  # faiss index over positions [0, self._graph_n)
        self._graph_n = 0
        self._building = False
        self._worker_lock = threading.Lock()

    # --- writes -------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: Matrix) -> None:
        units = _unit(np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim))
        with self._lock:
            n = len(self._ids)
            if n + len(ids) > self._unit.shape[0]:
                size = max(2 * self._unit.shape[0], n + len(ids))
                grown = np.zeros((size, self.dim), np.float32)
                grown[:n] = self._unit[:n]
                alive = np.zeros(size, dtype=bool)
                alive[:n] = self._alive[:n]
                self._unit, self._alive = grown, alive
            for i, id_ in enumerate(ids):
                self._kill(id_)
                self._pos[id_] = n + i
                self._ids.append(id_)
            self._unit[n : n + len(ids)] = units
            self._alive[n : n + len(ids)] = True
            tail = len(self._ids) - self._graph_n
        if self._graph is not None and tail >= CATCH_UP_CHUNK:
            self._start(self.catch_up)

    def remove(self, ids: Sequence[str]) -> None:
        with self._lock:
            for id_ in ids:
                self._kill(id_)

    def _kill(self, id_: str) -> None:
        old = self._pos.pop(id_, None)
        if old is not None:
            self._ids[old] = None
            self._alive[old] = False

    def __len__(self) -> int:
        return len(self._pos)

    # --- reads --------------------------------------------------------------------------
    def search(
        self, queries: Matrix, depth: int, only: set[str] | None = None
    ) -> list[list[tuple[str, float]]]:
        """The best ``depth`` (id, cosine) of each query, best first, ties by id; ``only``:
        restricted to these ids (always exact)."""
        units = _unit(np.asarray(queries, dtype=np.float32))
        with self._lock:
            if only is not None:
                positions = np.fromiter(
                    (self._pos[i] for i in only if i in self._pos), dtype=np.int64
                )
                return [self._exact(q, depth, positions) for q in units]
            if self._use_graph(depth):
                return self._graph_search(units, depth)
            live = np.flatnonzero(self._alive[: len(self._ids)])
            return [self._exact(q, depth, live) for q in units]

    def _wants_graph(self) -> bool:
        return self._hnsw_params is not None and len(self._pos) > self._exact_max

    def _graph_dead(self) -> int:
        return self._graph_n - int(np.count_nonzero(self._alive[: self._graph_n]))

    def _graph_stale(self) -> bool:
        return self._graph is None or self._graph_dead() > REBUILD_DEAD_SHARE * self._graph_n

    def _use_graph(self, depth: int) -> bool:
        if not self._wants_graph():
            return False
        if self._graph_stale():
            self._start(self.build_hnsw)
            return False
        return depth <= 4 * self._ef  # deeper pages: exact, which has no ef to outgrow

    def _exact(
        self, q: Matrix, depth: int, positions: npt.NDArray[np.int64]
    ) -> list[tuple[str, float]]:
        if positions.size == 0:
            return []
        scores = self._unit[positions] @ q
        return self._ordered(positions, scores, depth)

    def _ordered(
        self, positions: npt.NDArray[np.int64], scores: Matrix, depth: int
    ) -> list[tuple[str, float]]:
        """The ``depth`` best, ties by id: every row tied with the last one kept competes."""
        if positions.size > depth:
            cut = np.partition(scores, positions.size - depth)[positions.size - depth]
            keep = scores >= cut
            positions, scores = positions[keep], scores[keep]
        ids = [self._ids[p] for p in positions.tolist()]
        pairs = sorted(zip(ids, scores.tolist(), strict=True), key=lambda x: (-x[1], x[0]))
        return [(str(i), float(s)) for i, s in pairs[:depth]]

    def _graph_search(self, units: Matrix, depth: int) -> list[list[tuple[str, float]]]:
        faiss = _faiss()
        n_graph = self._graph_n
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(self._ef, depth)
        if self._graph_dead():
            # Referenced by params until the search returns.
            bitmap = np.packbits(self._alive[:n_graph], bitorder="little")
            params.sel = faiss.IDSelectorBitmap(bitmap)
        _, found = self._graph.search(units, depth, params=params)
        tail = n_graph + np.flatnonzero(self._alive[n_graph : len(self._ids)])
        out = []
        for q, row in zip(units, found, strict=True):
            positions = np.concatenate([row[row >= 0].astype(np.int64), tail])
            out.append(self._ordered(positions, self._unit[positions] @ q, depth))
        return out

    # --- the graph ----------------------------------------------------------------------
    def _start(self, work: Any) -> None:
        """Run ``work`` (a build or a catch-up) in a thread, one at a time."""
        with self._worker_lock:
            if self._building:
                return
            self._building = True

        def run() -> None:
            try:
                work()
            finally:
                self._building = False

        threading.Thread(target=run, name="faiss-hnsw", daemon=True).start()

    def build_hnsw(self) -> None:
        """Build the graph over a snapshot, swap it in (rows written meanwhile are its tail,
        scored exactly) and add that tail to it (:meth:`catch_up`)."""
        faiss = _faiss()
        assert self._hnsw_params is not None
        with self._lock:
            n0 = len(self._ids)
            snapshot = self._unit[:n0].copy()
        graph = faiss.IndexHNSWFlat(
            self.dim, int(self._hnsw_params["M"]), faiss.METRIC_INNER_PRODUCT
        )
        graph.hnsw.efConstruction = int(self._hnsw_params["efConstruction"])
        graph.add(snapshot)
        with self._lock:
            self._graph, self._graph_n = graph, n0
        self.catch_up()

    def prepare(self) -> None:
        """After bulk writes: start building the graph if searches would need one, else
        add the rows written since it was built."""
        with self._lock:
            wanted, stale = self._wants_graph(), self._graph_stale()
        if wanted and stale:
            self._start(self.build_hnsw)
        elif wanted:
            self.catch_up()

    def catch_up(self) -> None:
        """Add rows past the graph to it (a chunk per lock hold); called after bulk writes."""
        while True:
            with self._lock:
                if self._graph is None or self._graph_n == len(self._ids):
                    return
                upto = min(len(self._ids), self._graph_n + CATCH_UP_CHUNK)
                self._graph.add(self._unit[self._graph_n : upto])
                self._graph_n = upto

    def indexed(self) -> bool:
        """True when searches need no more exact scoring than the tail (or none at all)."""
        with self._lock:
            if not self._wants_graph():
                return True
            return self._graph is not None and self._graph_n == len(self._ids)
