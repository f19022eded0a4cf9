"""The background flush policy: unit tests of its triggers, then the real effect on Lite
and standalone (rows land in flushed segments, reads stay correct), and the Lite log."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pymilvus.client.types import SegmentState

from clipsearch.store.milvus import MilvusStore
from clipsearch.store.milvus_flush import FlushPolicy
from clipsearch.store.protocol import ImageRecord
from tests.store.conftest import DIM, StoreFactory


def wait_until(cond: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class Recorder:
    """A flush function that records the collections it was asked to flush."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, name: str) -> None:
        with self.lock:
            self.calls.append(name)
        if self.fail:
            raise RuntimeError("server away")


# --- the policy alone ------------------------------------------------------------------
def test_row_trigger_flushes_once_the_threshold_is_reached() -> None:
    rec = Recorder()
    policy = FlushPolicy(rec, rows=100, idle_s=0)
    try:
        policy.wrote("a", 60)
        time.sleep(0.3)
        assert rec.calls == []  # under the threshold, no idle trigger: nothing flushed
        assert policy.pending("a") == 60
        policy.wrote("a", 50)
        assert wait_until(lambda: policy.flushes("a") == 1, 10)
        assert rec.calls == ["a"]
        assert policy.pending("a") == 0
    finally:
        policy.close()


def test_idle_trigger_flushes_after_the_last_write_only() -> None:
    rec = Recorder()
    policy = FlushPolicy(rec, rows=0, idle_s=0.4)
    try:
        policy.wrote("a", 1)
        policy.wrote("b", 3)
        assert rec.calls == []  # nothing before the idle delay
        assert wait_until(lambda: policy.flushes("a") == 1 and policy.flushes("b") == 1, 10)
        assert sorted(rec.calls) == ["a", "b"]
        time.sleep(0.6)
        assert len(rec.calls) == 2  # nothing pending: no more flushes
    finally:
        policy.close()


def test_min_interval_spaces_flushes_of_one_collection() -> None:
    rec = Recorder()
    policy = FlushPolicy(rec, rows=1, idle_s=0, min_interval_s=0.8)
    try:
        policy.wrote("a", 1)
        assert wait_until(lambda: policy.flushes("a") == 1, 10)
        first = time.monotonic()
        policy.wrote("a", 1)
        assert wait_until(lambda: policy.flushes("a") == 2, 10)
        assert time.monotonic() - first >= 0.7
    finally:
        policy.close()


def test_failed_flush_keeps_rows_pending_and_forget_drops_them() -> None:
    rec = Recorder(fail=True)
    policy = FlushPolicy(rec, rows=1, idle_s=0)
    try:
        policy.wrote("a", 5)
        assert wait_until(lambda: rec.calls == ["a"], 10)
        time.sleep(0.2)
        assert policy.pending("a") == 5
        assert policy.flushes("a") == 0
        policy.forget(["a"])
        assert policy.pending("a") == 0
    finally:
        policy.close()


def test_disabled_policy_starts_no_thread_and_close_stops_it() -> None:
    off = FlushPolicy(Recorder(), rows=0, idle_s=0)
    off.wrote("a", 10_000)
    assert off.pending("a") == 0
    assert off._thread is None
    on = FlushPolicy(Recorder(), rows=10, idle_s=0)
    on.wrote("a", 1)
    thread = on._thread
    assert thread is not None
    assert thread.is_alive()
    on.close()
    assert not thread.is_alive()


# --- real Milvus ----------------------------------------------------------------------
def flushed_rows(store: MilvusStore, uri: str, name: str) -> int:
    """Rows of ``name`` that Milvus holds in flushed storage (not in memory / growing)."""
    if store.kind == "lite":
        # Lite lists its flushed Parquet files in the collection's manifest; its
        # background compaction may replace a file between two reads, hence the retry.
        folder = Path(uri) / "collections" / name
        for _ in range(20):
            manifest = json.loads((folder / "manifest.json").read_text())
            files = [
                folder / "partitions" / part / f
                for part, entry in manifest["partitions"].items()
                for f in entry["data_files"]
            ]
            try:
                return sum(pq.read_metadata(f).num_rows for f in files)
            except FileNotFoundError:
                time.sleep(0.1)
        raise AssertionError(f"Lite manifest of {name} kept changing")
    sealed = {SegmentState.Sealed, SegmentState.Flushing, SegmentState.Flushed}
    segments = store._client.list_persistent_segments(name)
    return sum(s.num_rows for s in segments if s.state in sealed)


def unit_images(n: int, seed: int, prefix: str = "img") -> list[ImageRecord]:
    vecs = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return [ImageRecord(id=f"{prefix}{i:05d}", vector=v) for i, v in enumerate(vecs)]


@pytest.mark.milvus_only
def test_bulk_upsert_over_threshold_is_flushed_and_reads_stay_correct(
    make_store: StoreFactory, new_group: Callable[..., str], request: pytest.FixtureRequest
) -> None:
    store = make_store("FLAT", flush_rows=500, flush_idle_s=0)
    uri = request.getfixturevalue(f"{store.kind}_uri")
    g = new_group(store)
    name = store.collection(g, "images")
    records = unit_images(1200, seed=21)
    for start in range(0, len(records), 256):  # the ingest pipeline's batch size
        store.upsert_images(g, records[start : start + 256])

    assert wait_until(lambda: store.flush_policy.flushes(name) >= 1)
    assert flushed_rows(store, uri, name) >= 500
    # Read-after-write across the flush: every row is found, the newest ones by search.
    assert store.count(g, "images") == 1200
    probe = np.stack([r.vector for r in records[-3:]])
    hits = store.search(g, "images", probe, top_k=1)
    assert [row[0].id for row in hits] == [r.id for r in records[-3:]]

    store.flush(g)  # explicit, for the end of a job: everything flushed now
    assert store.flush_policy.pending(name) == 0
    assert flushed_rows(store, uri, name) == 1200
    later = unit_images(1, seed=22, prefix="new")
    store.upsert_images(g, later)  # written after a flush: still read at once
    assert store.search(g, "images", later[0].vector, top_k=1)[0][0].id == "new00000"


@pytest.mark.milvus_only
def test_small_upload_is_flushed_when_writes_stop(
    make_store: StoreFactory, new_group: Callable[..., str], request: pytest.FixtureRequest
) -> None:
    store = make_store("FLAT", flush_rows=2000, flush_idle_s=0.5)
    uri = request.getfixturevalue(f"{store.kind}_uri")
    g = new_group(store)
    name = store.collection(g, "images")
    store.upsert_images(g, unit_images(7, seed=23))
    assert store.flush_policy.pending(name) == 7
    assert store.get(g, "images", ["img00006"])[0]["id"] == "img00006"

    assert wait_until(lambda: store.flush_policy.pending(name) == 0)
    assert flushed_rows(store, uri, name) == 7
    assert store.count(g, "images") == 7


# Lite only (parametrising `backend` overrides the fixture's list): the AllocTimestamp
# gap is Lite's, a server implements it.
@pytest.mark.parametrize("backend", ["lite"], indirect=True)
def test_lite_group_creation_logs_no_grpc_error(
    make_store: StoreFactory, new_group: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store("HNSW", prefix="tnoise")  # own prefix: creates its meta collection
    with caplog.at_level(logging.WARNING):
        g = new_group(store)
        store.upsert_images(g, unit_images(3, seed=24))
        assert store.search(g, "images", unit_images(1, seed=24)[0].vector, top_k=1)[0]
    errors = [r for r in caplog.records if r.name.startswith("grpc")]
    assert errors == [], [r.getMessage() for r in errors]
