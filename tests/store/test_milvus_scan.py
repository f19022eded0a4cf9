"""``scan``: every record in id order, page by page from a cursor, on Lite, the standalone
server and the fake; past Milvus' 16,384 cap on offset + limit, typed, with vectors."""

from __future__ import annotations

import numpy as np
import pytest

from clipsearch.store.milvus import MilvusStore
from clipsearch.store.protocol import ImageRecord, InvalidStoreRequest, TextRecord
from tests.store.conftest import DIM

BIG = 16_384 + 616  # more than Milvus lets offset + limit reach


def records(n: int, meta: list[dict[str, object]] | None = None) -> list[ImageRecord]:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    # Ids in an order of their own: insertion order must not be what the walk follows.
    ids = [f"{(i * 7919) % n:06d}-{i}" for i in range(n)]
    return [
        ImageRecord(id=ids[i], vector=vectors[i], metadata=meta[i] if meta else {"i": i})
        for i in range(n)
    ]


def walk(store: MilvusStore, g: str, limit: int, **kw: object) -> list[str]:
    seen: list[str] = []
    after = ""
    for _ in range(10_000):
        page = store.scan(g, "images", after=after, limit=limit, **kw)  # type: ignore[arg-type]
        assert len(page.rows) <= limit
        seen += [str(r["id"]) for r in page.rows]
        if page.next_after is None:
            return seen
        after = page.next_after
    raise AssertionError("the walk did not end")


@pytest.mark.slow
def test_walks_every_record_once_past_the_offset_cap(store: MilvusStore, g: str) -> None:
    recs = records(BIG)
    for start in range(0, BIG, 5000):
        store.upsert_images(g, recs[start : start + 5000])
        store.flush(g)  # several sealed segments, as a real collection has
    seen = walk(store, g, 2000)
    assert seen == sorted(r.id for r in recs)  # each once, in id order


def test_pages_cursor_and_end(store: MilvusStore, g: str) -> None:
    recs = records(25)
    store.upsert_images(g, recs)
    ids = sorted(r.id for r in recs)
    first = store.scan(g, "images", limit=10)
    assert [r["id"] for r in first.rows] == ids[:10]
    assert first.next_after == ids[9]
    assert set(first.rows[0]) == {
        "id",
        "source",
        "content_type",
        "width",
        "height",
        "caption",
        "metadata",
        "created_at",
    }
    rest = store.scan(g, "images", after=ids[9], limit=15)
    assert [r["id"] for r in rest.rows] == ids[10:]
    assert rest.next_after is None  # exactly full and nothing after: no empty last page
    assert store.scan(g, "images", after=ids[-1]).rows == []
    assert walk(store, g, 7) == ids


def test_vectors_and_texts(store: MilvusStore, g: str) -> None:
    recs = records(3)
    store.upsert_images(g, recs)
    page = store.scan(g, "images", with_vectors=True)
    by_id = {r.id: r for r in recs}
    for row in page.rows:
        assert row["vector"].dtype == np.float32
        want = by_id[row["id"]].vector
        np.testing.assert_allclose(row["vector"], want, atol=1e-5)
    store.upsert_texts(
        g, [TextRecord(id=f"t{i}", vector=recs[i].vector, text=f"x{i}") for i in range(3)]
    )
    texts = store.scan(g, "texts", limit=2, filter={})
    assert [r["id"] for r in texts.rows] == ["t0", "t1"]
    assert texts.rows[0]["text"] == "x0"
    assert "vector" not in texts.rows[0]


def test_walks_random_ids_with_vectors(store: MilvusStore, g: str) -> None:
    """The duplicates scan's walk: 2,500 random hex ids (Lite answered an arbitrary subset
    of a limited query without ``iterator=True``), 1,000 a page, each once, in id order,
    each with its own vector."""
    rng = np.random.default_rng(9)
    ids = sorted({f"{int(x):016x}" for x in rng.integers(0, 2**62, 2500)})
    vectors = rng.normal(size=(len(ids), DIM)).astype(np.float32)
    store.upsert_images(g, [ImageRecord(id=i, vector=vectors[k]) for k, i in enumerate(ids)])
    want = dict(zip(ids, vectors, strict=True))
    seen: list[str] = []
    after = ""
    for _ in range(10):
        page = store.scan(g, "images", after=after, limit=1000, with_vectors=True)
        for row in page.rows:
            norm = want[row["id"]] / np.linalg.norm(want[row["id"]])
            got = row["vector"] / np.linalg.norm(row["vector"])
            np.testing.assert_allclose(got, norm, atol=1e-5)
        seen += [str(r["id"]) for r in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == ids


def test_filter_is_typed_across_pages(store: MilvusStore, g: str) -> None:
    # Booleans and ones interleaved: Lite's own expression matches both.
    metas: list[dict[str, object]] = [{"n": True} if i % 3 else {"n": 1} for i in range(60)]
    recs = records(60, metas)
    store.upsert_images(g, recs)
    ones = sorted(r.id for r in recs if r.metadata["n"] is not True)
    trues = sorted(r.id for r in recs if r.metadata["n"] is True)
    assert walk(store, g, 4, filter={"n": 1}) == ones
    assert walk(store, g, 7, filter={"n": True}) == trues
    assert walk(store, g, 5, filter={"n": "1"}) == []


def test_bad_scan_requests(store: MilvusStore, g: str) -> None:
    for limit in (0, 16_385):
        with pytest.raises(InvalidStoreRequest):
            store.scan(g, "images", limit=limit)
    with pytest.raises(InvalidStoreRequest):
        store.scan(g, "images", filter={"bad key": 1})
    # An injection in the cursor matches only itself: nothing after it is skipped.
    store.upsert_images(g, records(3))
    page = store.scan(g, "images", after='" or id != "')
    assert len(page.rows) == 3


def test_texts_of_images(store: MilvusStore, g: str) -> None:
    recs = records(3)
    store.upsert_images(g, recs)
    texts = [
        TextRecord(id=f"t{i}", vector=recs[0].vector, text=f"x{i}", image_id=recs[i % 2].id)
        for i in range(5)
    ] + [TextRecord(id="free", vector=recs[0].vector, text="free")]
    store.upsert_texts(g, texts)
    got = store.texts_of_images(g, [recs[0].id, recs[2].id, recs[0].id])
    assert sorted(r["id"] for r in got) == ["t0", "t2", "t4"]
    assert {r["image_id"] for r in got} == {recs[0].id}
    assert set(got[0]) == {"id", "text", "image_id", "metadata", "created_at"}
    assert store.texts_of_images(g, []) == []
    many = [f"nope{i}" for i in range(250)] + [recs[1].id]  # more than one query's worth
    assert sorted(r["id"] for r in store.texts_of_images(g, many)) == ["t1", "t3"]
