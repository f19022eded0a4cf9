"""Fixtures shared by every test package (helpers that are not fixtures: ``tests/helpers``).

``standalone_uri`` is here so the store tests and the collection suite share one server:
``CLIPSEARCH_TEST_MILVUS_URI=http://127.0.0.1:19530`` reuses one you already run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipsearch.core.config import get_settings
from tests.store.milvus_server import StandaloneMilvus

# Starlette's TestClient sends `Host: testserver`, which the loopback default of the Host
# allowlist refuses; every test app accepts it (and the loopback names) unless a test sets
# CLIPSEARCH_ALLOWED_HOSTS / allowed_hosts itself.
TEST_ALLOWED_HOSTS = "testserver,127.0.0.1,localhost,::1"
os.environ.setdefault("CLIPSEARCH_ALLOWED_HOSTS", TEST_ALLOWED_HOSTS)
# The tests write into collections of their own (one per test, so the shared corpus stays
# intact), which the product default refuses without an admin key; the refusal itself is
# tested with the setting false (tests/api/test_access.py).
os.environ.setdefault("CLIPSEARCH_AUTO_CREATE_COLLECTIONS", "true")


@pytest.fixture
def clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``get_settings()`` as on a fresh machine: no ``CLIPSEARCH_*`` variable of the
    caller's shell, the data dir in this test's tmp dir, the settings cache emptied."""
    for name in list(os.environ):
        if name.startswith("CLIPSEARCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLIPSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLIPSEARCH_ALLOWED_HOSTS", TEST_ALLOWED_HOSTS)
    monkeypatch.setenv("CLIPSEARCH_AUTO_CREATE_COLLECTIONS", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def standalone_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Milvus standalone for the session; stopped (and checked gone) after."""
    given = os.environ.get("CLIPSEARCH_TEST_MILVUS_URI")
    if given:
        yield given
        return
    server = StandaloneMilvus(tmp_path_factory.mktemp("milvus-standalone"))
    server.start()
    pid = server.pid
    try:
        yield server.uri
    finally:
        server.stop()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # no orphan left behind
