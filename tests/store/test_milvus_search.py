"""Search answers compared with an exact numpy brute force, on Lite, standalone and the fake."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from clipsearch.store.milvus import MilvusStore
from clipsearch.store.protocol import ImageRecord, TextRecord
from tests.store.conftest import DIM, StoreFactory

Matrix = npt.NDArray[np.float32]


def random_vectors(n: int, dim: int, seed: int) -> Matrix:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def brute_force(base: Matrix, queries: Matrix, k: int) -> tuple[npt.NDArray[np.int64], Matrix]:
    """Exact cosine top-k: indices and scores, best first."""
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = q @ b.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def images(vectors: Matrix, metadata: list[dict[str, object]] | None = None) -> list[ImageRecord]:
    return [
        ImageRecord(
            id=f"img{i:05d}",
            vector=v,
            source=f"s{i}.png",
            metadata=metadata[i] if metadata else {"i": i},
        )
        for i, v in enumerate(vectors)
    ]


def test_flat_equals_brute_force(store: MilvusStore, g: str) -> None:
    base = random_vectors(2000, DIM, seed=1)
    queries = random_vectors(8, DIM, seed=2)
    store.upsert_images(g, images(base))

    hits = store.search(g, "images", queries, top_k=10)

    want_idx, want_scores = brute_force(base, queries, 10)
    for qi, row in enumerate(hits):
        assert [h.id for h in row] == [f"img{i:05d}" for i in want_idx[qi]]
        np.testing.assert_allclose([h.score for h in row], want_scores[qi], atol=1e-4)
        assert row[0].fields["source"] == f"s{want_idx[qi][0]}.png"
        assert row[0].fields["metadata"] == {"i": int(want_idx[qi][0])}


def wait_for_index(store: MilvusStore, name: str, rows: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = store._client.describe_index(name, "vector")
        if int(info.get("indexed_rows", 0)) >= rows:
            return
        time.sleep(0.5)
    raise AssertionError(f"index of {name} not built in {timeout_s}s: {info}")


@pytest.mark.milvus_only
@pytest.mark.slow
def test_hnsw_recall_at_10_on_10k(
    make_store: StoreFactory, new_group: Callable[..., str], backend: str
) -> None:
    dim, n = 64, 10_000
    store = make_store("HNSW")
    g = new_group(store, dim=dim)
    base = random_vectors(n, dim, seed=3)
    queries = random_vectors(100, dim, seed=4)
    t0 = time.perf_counter()
    store.upsert_images(g, images(base))
    if backend == "standalone":
        # Seal the segment and wait for the HNSW build, so the server really searches HNSW
        # rather than scanning unsealed rows.
        store.flush(g)
        wait_for_index(store, store.collection(g, "images"), n)
    t_insert = time.perf_counter() - t0

    t0 = time.perf_counter()
    hits = store.search(g, "images", queries, top_k=10)
    t_search = time.perf_counter() - t0

    want_idx, _ = brute_force(base, queries, 10)
    found = sum(
        len({h.id for h in row} & {f"img{i:05d}" for i in want_idx[qi]})
        for qi, row in enumerate(hits)
    )
    recall = found / (10 * len(queries))
    print(
        f"\n[{backend}] HNSW 10k x {dim}: upsert {t_insert:.2f}s, "
        f"100 queries {t_search:.2f}s, recall@10 {recall:.4f}"
    )
    assert recall >= 0.99
    assert all(len(row) == 10 for row in hits)
    assert store.count(g, "images") == n


def test_offset_pages_concatenate_to_one_deep_search(store: MilvusStore, g: str) -> None:
    base = random_vectors(300, DIM, seed=5)
    query = random_vectors(1, DIM, seed=6)
    store.upsert_images(g, images(base))

    full = [h.id for h in store.search(g, "images", query, top_k=15)[0]]
    pages = [
        [h.id for h in store.search(g, "images", query, top_k=5, offset=off)[0]]
        for off in (0, 5, 10)
    ]

    assert pages[0] + pages[1] + pages[2] == full
    want_idx, _ = brute_force(base, query, 15)
    assert full == [f"img{i:05d}" for i in want_idx[0]]


@pytest.mark.milvus_only
def test_hnsw_deep_offset_still_exact_enough(
    make_store: StoreFactory, new_group: Callable[..., str]
) -> None:
    # offset + top_k above ef_search (64 here): the store must widen ef, else Milvus errs.
    store = make_store("HNSW")
    g = new_group(store)
    base = random_vectors(500, DIM, seed=7)
    store.upsert_images(g, images(base))
    hits = store.search(g, "images", base[:1], top_k=50, offset=100)[0]
    assert len(hits) == 50
    want_idx, _ = brute_force(base, base[:1], 150)
    assert len({h.id for h in hits} & {f"img{i:05d}" for i in want_idx[0][100:]}) >= 45


def test_min_score_cuts_at_threshold(store: MilvusStore, g: str) -> None:
    base = random_vectors(400, DIM, seed=8)
    query = random_vectors(1, DIM, seed=9)
    store.upsert_images(g, images(base))
    _, scores = brute_force(base, query, 400)
    threshold = float(scores[0][12]) - 1e-6  # exactly 13 hits at or above it

    hits = store.search(g, "images", query, top_k=50, min_score=threshold)[0]

    assert len(hits) == 13
    assert all(h.score >= threshold for h in hits)
    assert store.search(g, "images", query, top_k=50, min_score=1.01)[0] == []


def test_batch_search_equals_single_searches(store: MilvusStore, g: str) -> None:
    base = random_vectors(500, DIM, seed=10)
    store.upsert_images(g, images(base))
    queries = random_vectors(5, DIM, seed=11)
    batch = store.search(g, "images", queries, top_k=7)
    singles = [store.search(g, "images", q, top_k=7)[0] for q in queries]
    assert [[h.id for h in r] for r in batch] == [[h.id for h in r] for r in singles]


def test_text_search_returns_text_fields(store: MilvusStore, g: str) -> None:
    base = random_vectors(50, DIM, seed=12)
    store.upsert_texts(
        g,
        [
            TextRecord(id=f"t{i}", vector=v, text=f"caption {i}", image_id=f"img{i:05d}")
            for i, v in enumerate(base)
        ],
    )
    hit = store.search(g, "texts", base[7], top_k=1)[0][0]
    assert hit.id == "t7"
    assert hit.score == pytest.approx(1.0, abs=1e-4)
    assert hit.fields["text"] == "caption 7"
    assert hit.fields["image_id"] == "img00007"
    assert store.search(g, "images", base[7], top_k=1) == [[]]  # other target is empty
