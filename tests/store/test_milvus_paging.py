"""Deep paging: pages of one query, concatenated past Milvus' 16,384 cap, equal one exact
numpy ranking, on Lite, standalone and the fake; ties are ordered by id."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from clipsearch.store import milvus_paging as paging
from clipsearch.store.milvus import MilvusStore
from clipsearch.store.protocol import Hit, ImageRecord, InvalidStoreRequest
from tests.store.conftest import DIM, StoreFactory

Matrix = npt.NDArray[np.float32]
N = 20_000  # > 16,384: the last pages are past Milvus' cap


def clustered(n: int, seed: int) -> Matrix:
    """64 gaussian centres + noise: real-like neighbourhoods (i.i.d. vectors are not)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, DIM))
    v = centres[rng.integers(0, 64, n)] + 0.3 * rng.standard_normal((n, DIM))
    out: Matrix = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


def put(store: MilvusStore, g: str, base: Matrix, meta: Callable[[int], dict[str, object]]) -> None:
    for s in range(0, len(base), 5000):
        rows = range(s, min(len(base), s + 5000))
        store.upsert_images(
            g, [ImageRecord(id=f"i{i:06d}", vector=base[i], metadata=meta(i)) for i in rows]
        )
    store.flush(g)


def assert_ranking(
    got: list[Hit], base: Matrix, query: Matrix, keep: npt.NDArray[np.bool_]
) -> None:
    """``got`` is the exact ranking of the rows ``keep`` selects: same ids and scores, up
    to the order of scores within 1e-5 of each other (float32 vs numpy's rounding)."""
    scores = base @ query
    order = [int(i) for i in np.argsort(-scores, kind="stable") if keep[i]][: len(got)]
    assert len(got) == len(order)
    assert len({h.id for h in got}) == len(got), "pages overlap"
    np.testing.assert_allclose([h.score for h in got], scores[order], atol=1e-5)
    mismatched = [k for k, (h, i) in enumerate(zip(got, order, strict=True)) if h.id != f"i{i:06d}"]
    for k in mismatched:
        assert abs(scores[int(got[k].id[1:])] - scores[order[k]]) < 1e-5, (k, got[k])


@pytest.mark.slow
def test_pages_past_milvus_cap_equal_exact_ranking(store: MilvusStore, g: str) -> None:
    base = clustered(N, seed=3)
    put(store, g, base, lambda i: {"even": i % 2 == 0})
    query = base[7]
    got: list[Hit] = []
    for offset in (0, 6000, 12000, 18000):  # 6000 per page: the third straddles 16,384
        got += store.search(
            g, "images", query, top_k=6000 if offset < 18000 else 1000, offset=offset
        )[0]
    assert len(got) == 19000
    assert_ranking(got, base, query, np.ones(N, dtype=bool))
    assert got[-1].fields["metadata"] == {"even": int(got[-1].id[1:]) % 2 == 0}  # fields filled
    # A typed filter (Lite would match `true` to 1) at depth: pages of the kept rows only.
    even = np.arange(N) % 2 == 0
    page = store.search(g, "images", query, top_k=500, offset=9500, filter={"even": True})[0]
    deep = store.search(g, "images", query, top_k=10000, offset=0, filter={"even": True})[0]
    assert [h.id for h in deep[9500:]] == [h.id for h in page]
    assert_ranking(deep, base, query, even)


def test_ties_are_ordered_by_id_and_pages_do_not_overlap(store: MilvusStore, g: str) -> None:
    """Tie groups up to TIE_MARGIN (here 14, 12, 9 rows of three vectors, ids shuffled)
    cut by every page edge: the pages are the ranking by score, then id."""
    q = np.ones(DIM, dtype=np.float32)
    vecs = [q, q + np.eye(DIM, dtype=np.float32)[0], np.eye(DIM, dtype=np.float32)[1]]
    sizes = [14, 12, 9]
    recs, want = [], []
    for k, (vec, size) in enumerate(zip(vecs, sizes, strict=True)):
        ids = [f"t{(i * 7919) % 97:03d}{k}" for i in range(size)]
        recs += [ImageRecord(id=i, vector=vec) for i in ids]
        want += sorted(ids)
    store.upsert_images(g, recs)
    pages = [store.search(g, "images", q, top_k=5, offset=o)[0] for o in range(0, 40, 5)]
    assert [h.id for p in pages for h in p] == want


def test_depth_is_bounded(store: MilvusStore, g: str) -> None:
    q = np.ones(DIM, dtype=np.float32)
    with pytest.raises(InvalidStoreRequest):
        store.search(g, "images", q, top_k=16385)
    with pytest.raises(InvalidStoreRequest):
        store.search(g, "images", q, top_k=10, offset=1_000_000)


def test_deep_page_keyset_logic_with_small_batches() -> None:
    """The keyset loop alone, on a list: tie groups larger than the held-back part, a batch
    of one score, min_score and accept."""
    scores = [0.9] * 5 + [0.8] * 7 + [0.5] * 3 + [0.1] * 4
    hits = [Hit(f"h{i:02d}", s, {}) for i, s in enumerate(scores)]

    def run(limit: int, upper: float | None, depth: int) -> list[Hit]:
        inside = [h for h in hits if upper is None or h.score <= upper]
        return sorted(inside, key=lambda h: -h.score)[:limit]

    want = sorted(hits, key=paging.order_key)
    for batch in (8, 9, 20):  # more than the largest tie group (7)
        got = [
            h
            for o in range(0, 19, 4)
            for h in paging.deep_page(run, top_k=4, offset=o, batch=batch)
        ]
        assert [h.id for h in got] == [h.id for h in want], batch
    cut = paging.deep_page(run, top_k=19, offset=0, batch=8, min_score=0.5)
    assert [h.score for h in cut] == [0.9] * 5 + [0.8] * 7 + [0.5] * 3
    odd = paging.deep_page(run, top_k=3, offset=2, batch=8, accept=lambda h: int(h.id[1:]) % 2 == 1)
    assert [h.id for h in odd] == ["h05", "h07", "h09"]


@pytest.mark.slow
@pytest.mark.milvus_only
def test_hnsw_keeps_recall_past_milvus_cap(
    make_store: StoreFactory, new_group: Callable[..., str]
) -> None:
    """HNSW: ef is widened to the depth read plus the batch. Measured on Lite, 40,000 rows:
    with ef capped at 16,384 the page at 36,000 held 8-53% of the exact rows there (at
    17,000-30,000 still 99.5-100%); widened, 100%."""
    store = make_store("HNSW")
    g = new_group(store)
    base = clustered(40_000, seed=5)
    put(store, g, base, lambda i: {})
    query = base[11]
    page = store.search(g, "images", query, top_k=1000, offset=36000)[0]
    order = np.argsort(-(base @ query), kind="stable")
    want = {f"i{i:06d}" for i in order[36000:37000]}
    assert len(page) == 1000
    assert len({h.id for h in page} & want) / 1000 >= 0.98
