"""The store part of ``clipsearch bench search``: one corpus, every search engine, one run.

The corpus is clustered (64 gaussian centres, as real embeddings are): on i.i.d. random
512-d vectors every neighbour sits at cosine ~0.15 and HNSW recall@10 means nothing (0.1-0.3
at ef 128). Queries are drawn the same way. For each engine it measures recall@10 against
the exact answer (numpy), p50/p99 of single queries from one client, and queries per second
with ``clients`` threads searching at once:

- ``milvus``: ``MilvusStore.search`` (the project's own path, its lock included) on Lite or
  on the server given by ``--milvus-uri``;
- ``milvus-bare``: on a server only, pymilvus' own ``MilvusClient.search`` on the same
  collection with the same ef and consistency, asking for ids alone: the floor the
  project's path is compared with;
- ``faiss-hnsw``: faiss ``IndexHNSWFlat`` in this process with the same M, efConstruction
  and ef (inner product on unit vectors = cosine); skipped when faiss is not installed;
- ``numpy-exact``: brute force, one matrix-vector product per query.

It measures only: it never fails because something is slow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
SearchFn = Callable[[Vectors], Sequence[int]]  # one query (1 x dim) -> ids, best first

CENTRES = 64
SPREAD = 0.5  # per-dimension noise around a centre, relative to the centres' own scale
_SLICE = 65_536


def _unit(x: Vectors) -> Vectors:
    out: Vectors = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def clustered(n: int, dim: int, seed: int = 0, centres: int = CENTRES) -> Vectors:
    """``n`` unit vectors around ``centres`` gaussian centres (deterministic in ``seed``; the
    same centres for every ``n``, so queries from another seed share them)."""
    centre = np.random.default_rng(1234).standard_normal((centres, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, centres, n)
    out: Vectors = np.empty((n, dim), dtype=np.float32)
    # In slices: 1M x 512 float64 noise at once would be 4 GB. The generator's stream is the
    # same either way, so the vectors are those of one call.
    for start in range(0, n, _SLICE):
        stop = min(n, start + _SLICE)
        noise = rng.standard_normal((stop - start, dim)).astype(np.float32)
        out[start:stop] = _unit(centre[labels[start:stop]] + SPREAD * noise)
    return out


def exact_top_k(corpus: Vectors, queries: Vectors, k: int) -> npt.NDArray[np.int64]:
    """Row ids of the ``k`` best cosine matches of each query, best first."""
    scores = queries @ corpus.T
    part = np.argpartition(-scores, kth=min(k, corpus.shape[0] - 1), axis=1)[:, :k]
    order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
    out: npt.NDArray[np.int64] = np.take_along_axis(part, order, axis=1).astype(np.int64)
    return out


def recall(got: Sequence[Sequence[int]], exact: npt.NDArray[np.int64]) -> float:
    """Mean share of the exact top-k found in each answer."""
    k = exact.shape[1]
    hits = [len(set(g[:k]) & set(e.tolist())) / k for g, e in zip(got, exact, strict=True)]
    return float(np.mean(hits)) if hits else 0.0


@dataclass
class EngineResult:
    name: str
    recall_at_k: float
    p50_ms: float
    p99_ms: float
    qps: float
    build_s: float

    def row(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "recall": round(self.recall_at_k, 4),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "qps": round(self.qps, 1),
            "build_s": round(self.build_s, 1),
        }


def measure(
    name: str, search: SearchFn, queries: Vectors, exact: npt.NDArray[np.int64], clients: int
) -> EngineResult:
    """Recall and single-client latency over every query, then throughput at ``clients``."""
    search(queries[:1])  # warm
    got, times = [], []
    for i in range(len(queries)):
        t0 = time.perf_counter()
        got.append(list(search(queries[i : i + 1])))
        times.append((time.perf_counter() - t0) * 1000.0)
    p50, p99 = np.percentile(np.asarray(times), [50, 99])
    order = list(range(len(queries)))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(lambda i: search(queries[i : i + 1]), order))
    qps = len(order) / (time.perf_counter() - t0)
    return EngineResult(name, recall(got, exact), float(p50), float(p99), qps, 0.0)


def numpy_engine(corpus: Vectors, k: int) -> SearchFn:
    def search(q: Vectors) -> list[int]:
        return [int(i) for i in exact_top_k(corpus, q, k)[0]]

    return search


def faiss_engine(
    corpus: Vectors, k: int, m: int, ef_construction: int, ef: int
) -> tuple[SearchFn, float] | None:
    """faiss HNSW over ``corpus`` with the store's parameters, and its build seconds; None
    without faiss."""
    try:
        import faiss  # type: ignore[import-untyped,unused-ignore]  # optional: the bench extra
    except ImportError:
        return None
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(corpus.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.add(corpus)
    index.hnsw.efSearch = ef
    build_s = time.perf_counter() - t0

    def search(q: Vectors) -> list[int]:
        _, ids = index.search(q, k)
        return [int(i) for i in ids[0]]

    return search, build_s


def bare_milvus_engine(uri: str, collection: str, k: int, ef: int, reads: dict[str, Any]) -> Any:
    """pymilvus directly on ``collection`` (ids only): ``(search, close)``."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, timeout=60)
    params = {"metric_type": "COSINE", "params": {"ef": ef}}

    def search(q: Vectors) -> list[int]:
        hits = client.search(
            collection,
            data=q.tolist(),
            limit=k,
            search_params=params,
            anns_field="vector",
            output_fields=[],
            **reads,
        )
        return [int(h["id"], 16) for h in hits[0]]

    return search, client.close
