"""The faiss embedded store beyond the shared contract: what survives a restart, the HNSW
path (graph, tail, dead rows, deep pages) against exact answers, and writes that fail."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from clipsearch.bench.search_store import clustered, exact_top_k, recall
from clipsearch.store.faiss_store import FaissStore
from clipsearch.store.protocol import ImageRecord, IndexSpec, StoreError, TextRecord

DIM = 32


def _images(vectors: np.ndarray, start: int = 0) -> list[ImageRecord]:
    return [
        ImageRecord(id=f"{start + i:08d}", vector=v, source=f"s{start + i}", metadata={"n": i})
        for i, v in enumerate(vectors)
    ]


def _wait_indexed(store: FaissStore, group: str, timeout_s: float = 120.0) -> None:
    started = time.monotonic()
    while not store.indexed(group, "images"):
        assert time.monotonic() - started < timeout_s, "graph not built"
        time.sleep(0.05)


def _ids(hits: list[list]) -> list[list[int]]:  # type: ignore[type-arg]
    return [[int(h.id) for h in page] for page in hits]


def test_everything_written_is_there_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    vectors = clustered(50, DIM, seed=1)
    store = FaissStore(path)
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    store.upsert_images("g", _images(vectors))
    store.upsert_texts(
        "g", [TextRecord(id="t1", vector=vectors[0], text="a cat", image_id="00000000")]
    )
    store.delete("g", "images", ["00000049"])
    store.set_threshold("g", 0.25)
    store.begin_shadow("g", dim=8, model_name="m2", fingerprint="fp2", index=IndexSpec("FLAT"))
    store.upsert_images("g", _images(clustered(3, 8, seed=2)), fingerprint="fp2")
    before = store.search("g", "images", vectors[:3], top_k=5)
    store.close()

    again = FaissStore(path)
    info = again.group_info("g")
    assert info.counts == {"images": 49, "texts": 1}
    assert info.min_score_auto == 0.25
    assert info.shadow is not None
    assert info.shadow.fingerprint == "fp2"
    assert again.scan_ids("g", "images", shadow=True) == ["00000000", "00000001", "00000002"]
    (row,) = again.get("g", "images", ["00000007"], with_vectors=True)
    assert row["metadata"] == {"n": 7}
    assert row["source"] == "s7"
    assert np.array_equal(row["vector"], vectors[7])
    assert again.get("g", "images", ["00000049"]) == []
    after = again.search("g", "images", vectors[:3], top_k=5)
    assert _ids(after) == _ids(before)
    assert again.text_ids_of_image("g", "00000000") == ["t1"]
    again.close()


def test_hnsw_search_agrees_with_exact_and_never_returns_dead_rows(tmp_path: Path) -> None:
    corpus = clustered(3000, DIM, seed=3)
    queries = clustered(40, DIM, seed=4)
    store = FaissStore(tmp_path / "s.sqlite3", exact_max=500, hnsw_ef_search=64)
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    for start in range(0, len(corpus), 1000):
        store.upsert_images("g", _images(corpus[start : start + 1000], start))
    assert not store.indexed("g", "images")  # 3,000 rows, no graph yet
    store.flush("g")  # starts the build
    _wait_indexed(store, "g")

    got = _ids(store.search("g", "images", queries, top_k=10))
    assert recall(got, exact_top_k(corpus, queries, 10)) >= 0.95

    # Dead rows (deleted, or replaced by a new vector) are masked out of the graph.
    dead = {int(i) for page in got[:5] for i in page[:3]}
    store.delete("g", "images", [f"{i:08d}" for i in dead])
    moved = next(i for i in got[5] if i not in dead)
    store.upsert_images("g", [ImageRecord(id=f"{moved:08d}", vector=-queries[5])])
    again = _ids(store.search("g", "images", queries, top_k=10))
    assert not dead & {i for page in again for i in page}
    assert moved not in again[5]
    # The newest rows (the tail past the graph) are found without a flush.
    store.upsert_images("g", [ImageRecord(id="99999999", vector=queries[7])])
    (page,) = store.search("g", "images", queries[7:8], top_k=3)
    assert page[0].id == "99999999"
    assert page[0].score == pytest.approx(1.0, abs=1e-5)

    # Deep pages are exact and continue the first page without overlap.
    (first,) = store.search("g", "images", queries[:1], top_k=300)
    (deep,) = store.search("g", "images", queries[:1], top_k=100, offset=300)
    assert not {h.id for h in first} & {h.id for h in deep}
    assert len(deep) == 100
    scores = [h.score for h in deep]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] <= first[-1].score
    assert store.count("g", "images") == 3000 - len(dead) + 1  # the tail row
    store.close()


def test_searches_while_writing_see_whole_batches(tmp_path: Path) -> None:
    store = FaissStore(tmp_path / "s.sqlite3", exact_max=200)
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    corpus = clustered(2000, DIM, seed=5)
    store.upsert_images("g", _images(corpus[:400]))
    store.flush("g")
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                (page,) = store.search("g", "images", corpus[:1], top_k=10)
                assert page[0].id == "00000000"
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(400, 2000, 100):
        store.upsert_images("g", _images(corpus[start : start + 100], start))
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[:1]
    assert store.count("g", "images") == 2000
    store.close()


def test_a_write_that_fails_changes_nothing(tmp_path: Path) -> None:
    store = FaissStore(tmp_path / "s.sqlite3")
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    store.upsert_images("g", _images(clustered(5, DIM, seed=6)))
    store._file._db.close()  # the file gone from under it: every write now fails
    with pytest.raises(StoreError):
        store.upsert_images("g", _images(clustered(3, DIM, seed=7), 100))
    with pytest.raises(StoreError):
        store.delete("g", "images", ["00000000"])
    assert store.count("g", "images") == 5  # memory follows only committed writes
    assert store.existing_ids("g", "images", ["00000000", "00000100"]) == {"00000000"}


def test_damaged_records_never_keep_the_store_from_opening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = FaissStore(path)
    store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
    store.upsert_images("g", _images(clustered(3, DIM, seed=8)))
    coll = store.collection("g", "images")
    store.close()
    with sqlite3.connect(path) as db:  # what a disk error or a hand edit could leave
        db.executemany(
            "INSERT INTO records (coll, id, row, vector) VALUES (?, ?, ?, ?)",
            [
                (coll, "bad-json", "{not json", np.zeros(DIM, np.float32).tobytes()),
                (coll, "short", '{"id": "short"}', b"\x00\x01\x02"),
                (coll, "wrong-dim", '{"id": "wrong-dim"}', np.zeros(3, np.float32).tobytes()),
            ],
        )
    again = FaissStore(path)
    assert again.count("g", "images") == 3
    assert len(again.search("g", "images", clustered(1, DIM, seed=9), top_k=10)[0]) == 3
    again.close()
