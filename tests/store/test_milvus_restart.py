"""Writes ride out a Milvus server restart; a refused write and reads still fail at once.

A real standalone server of the test's own (the session's shared one is never restarted),
killed and started again on the same port and data, as `docker compose restart milvus`
does to the compose stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusException
from pymilvus.exceptions import MilvusUnavailableException

from clipsearch.store.milvus import MilvusStore
from clipsearch.store.milvus_retry import is_unavailable, retry_unavailable
from clipsearch.store.protocol import ImageRecord, StoreError
from tests.store.milvus_server import RestartableMilvus

DIM = 8


def vec(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    v[(i + 1) % DIM] = 0.5
    return v / np.linalg.norm(v)


def records(start: int, n: int) -> list[ImageRecord]:
    return [ImageRecord(id=f"r{i}", vector=vec(i)) for i in range(start, start + n)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RestartableMilvus]:
    srv = RestartableMilvus(tmp_path / "milvus")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.standalone
def test_an_upsert_during_a_restart_lands_once_the_server_is_back(
    server: RestartableMilvus,
) -> None:
    store = MilvusStore(server.uri, prefix="restart", connect_timeout=5, write_retry_s=90)
    impatient = MilvusStore(server.uri, prefix="restart", connect_timeout=5, write_retry_s=0)
    try:
        store.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
        store.upsert_images("g", records(0, 10))
        impatient.ensure_group("g", dim=DIM, model_name="m", fingerprint="fp")
        server.kill()
        start = time.monotonic()
        with pytest.raises(StoreError) as refused:
            impatient.upsert_images("g", records(100, 1))
        assert is_unavailable(refused.value.__cause__), refused.value
        assert time.monotonic() - start < 30

        back = threading.Timer(3.0, server.start_again)
        back.start()
        try:
            store.upsert_images("g", records(10, 10))  # waits for the server
        finally:
            back.join()
        assert time.monotonic() - start >= 3.0
        # A restarted server reloads its collections by itself; reads fail until it has.
        deadline = time.monotonic() + 120
        while True:
            try:
                count = store.count("g", "images")
                break
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert count == 20
        got = store.get("g", "images", [f"r{i}" for i in range(20)])
        assert sorted(str(r["id"]) for r in got) == sorted(f"r{i}" for i in range(20))
    finally:
        impatient.close()
        store.close()


def store_error(message: str, cause: BaseException) -> StoreError:
    """A StoreError as MilvusStore._call makes it: flagged from its pymilvus cause."""
    err = StoreError(message)
    err.unavailable = is_unavailable(cause)
    err.__cause__ = cause
    return err


def test_only_unavailable_failures_are_retried() -> None:
    assert is_unavailable(MilvusUnavailableException(message="server unavailable"))
    assert is_unavailable(MilvusException(message="Fail connecting to server on milvus:19530"))
    assert is_unavailable(ConnectionRefusedError())
    assert not is_unavailable(MilvusException(message="invalid expression: id == "))
    assert not is_unavailable(ValueError("x"))
    assert not is_unavailable(None)

    clock = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        clock[0] += s

    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 4:
            raise store_error("down", MilvusUnavailableException(message="unavailable"))
        return "ok"

    assert retry_unavailable(flaky, "upsert", 60, sleep=sleep, clock=lambda: clock[0]) == "ok"
    assert sleeps == [0.5, 1.0, 2.0]

    def refused() -> str:
        calls["n"] += 1
        raise store_error("bad", MilvusException(message="invalid expression"))

    calls["n"] = 0
    with pytest.raises(StoreError, match="bad"):
        retry_unavailable(refused, "upsert", 60, sleep=sleep, clock=lambda: clock[0])
    assert calls["n"] == 1

    def always_down() -> str:
        raise store_error("down", ConnectionRefusedError())

    sleeps.clear()
    with pytest.raises(StoreError, match="down"):
        retry_unavailable(always_down, "upsert", 10, sleep=sleep, clock=lambda: clock[0])
    assert sum(sleeps) <= 10
