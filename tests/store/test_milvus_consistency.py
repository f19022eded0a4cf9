"""Read consistency (:mod:`clipsearch.store.milvus_consistency`): the default Session level
still reads the store's own writes at once, and costs less than Strong on a server.

The latency test prints p50 of Session vs Strong (the figures) and asserts only that both
answer the same: a benchmark never fails on timings.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest

from clipsearch.store.milvus import MilvusStore
from clipsearch.store.milvus_consistency import read_options
from clipsearch.store.protocol import ImageRecord, InvalidStoreRequest
from tests.store.conftest import DIM, StoreFactory


def _records(rng: np.random.Generator, n: int, tag: str) -> list[ImageRecord]:
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [
        ImageRecord(id=f"{tag}-{i:03d}", vector=vecs[i], source=f"{tag}/{i}", metadata={"t": tag})
        for i in range(n)
    ]


def test_read_options_per_level() -> None:
    assert read_options("session") == {"consistency_level": "Session"}
    assert read_options("Bounded") == {"consistency_level": "Bounded"}
    assert read_options("strong") == {"consistency_level": "Strong"}
    with pytest.raises(InvalidStoreRequest):
        read_options("eventually-maybe")


def test_default_reads_see_own_writes_at_once(store: MilvusStore, g: str) -> None:
    """Upsert, then count / search / get at once, then delete and look again: 15 rounds."""
    rng = np.random.default_rng(3)
    total = 0
    for n in range(15):
        recs = _records(rng, 8, f"r{n}")
        store.upsert_images(g, recs)
        total += len(recs)
        assert store.count(g, "images") == total, f"round {n}"
        (hits,) = store.search(g, "images", recs[0].vector[None, :], top_k=1)
        assert [h.id for h in hits] == [recs[0].id], f"round {n}"
        (mine,) = store.search(
            g, "images", recs[1].vector[None, :], top_k=20, filter={"t": f"r{n}"}
        )
        assert {h.id for h in mine} == {r.id for r in recs}, f"round {n}"
        assert store.delete(g, "images", [recs[0].id]) == 1
        total -= 1
        assert store.existing_ids(g, "images", [r.id for r in recs]) == {r.id for r in recs[1:]}


@pytest.mark.milvus_only
@pytest.mark.parametrize(
    "backend", ["lite", pytest.param("standalone", marks=pytest.mark.standalone)], indirect=True
)
def test_session_vs_strong_latency(
    make_store: StoreFactory, new_group: Callable[..., str], backend: str
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    session: MilvusStore = make_store("HNSW", prefix=prefix)
    strong: MilvusStore = make_store("HNSW", prefix=prefix, consistency="strong")
    g = new_group(session)
    rng = np.random.default_rng(4)
    recs = _records(rng, 500, "lat")
    session.upsert_images(g, recs)
    session.flush(g)
    queries = np.stack([r.vector for r in recs[:30]])
    p50: dict[str, float] = {}
    answers: dict[str, list[list[str]]] = {}
    for label, store in (("session", session), ("strong", strong)):
        store.search(g, "images", queries[:1], top_k=10)  # loads, warms
        times, got = [], []
        for q in queries:
            t0 = time.perf_counter()
            (hits,) = store.search(g, "images", q[None, :], top_k=10)
            times.append((time.perf_counter() - t0) * 1000.0)
            got.append([h.id for h in hits])
        p50[label] = float(np.median(times))
        answers[label] = got
    print(
        f"\n[{backend}] store search p50 over 500 rows, 30 queries: "
        f"session {p50['session']:.1f} ms, strong {p50['strong']:.1f} ms "
        f"(ratio {p50['strong'] / p50['session']:.1f}x; shared 2-core machine)"
    )
    assert answers["session"] == answers["strong"]
    assert all(a[0] == r.id for a, r in zip(answers["session"], recs, strict=False))
