"""Fixtures running the same store tests against Milvus Lite, a real standalone server and
the in-memory fake store of the use-case tests.

``CLIPSEARCH_TEST_MILVUS_URI=http://127.0.0.1:19530`` reuses a server you already run
instead of starting one (handy while iterating; CI leaves it unset).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from clipsearch.store.faiss_store import FaissStore
from clipsearch.store.milvus import MilvusStore
from tests.unit.usecase_fakes import FakeStore

StoreFactory = Callable[..., MilvusStore]

DIM = 16
MODEL = "test-model"
FINGERPRINT = "fp-aaaa"


@pytest.fixture(scope="session")
def lite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One Lite file for the session: opening one costs about a second, and tests are
    # isolated by a unique collection prefix instead.
    return str(tmp_path_factory.mktemp("milvus-lite") / "store.db")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every store test runs on each backend: Milvus Lite, a standalone server and the
    in-memory fake the use-case tests rely on (so the fake keeps the contract), except
    ``milvus_only`` tests (Milvus internals: index params, RPC chunks, flushing, files)
    and tests that parametrise ``backend`` themselves."""
    if "backend" not in metafunc.fixturenames:
        return
    if any("backend" in m.args[0] for m in metafunc.definition.iter_markers("parametrize")):
        return
    params = ["lite", pytest.param("standalone", marks=pytest.mark.standalone)]
    if metafunc.definition.get_closest_marker("milvus_only") is None:
        params += ["faiss", "fake"]
    metafunc.parametrize("backend", params, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _close_all(cache: dict[str, MilvusStore]) -> None:
    for i, store in enumerate(cache.values()):
        if i == 0:  # the stores share one prefix, hence one meta collection
            with contextlib.suppress(Exception):
                store._client.drop_collection(store._meta_name)
        store.close()


# One cache of stores per backend, each depending on its backend's URI fixture, so pytest
# closes the stores before it stops the server they talk to. Creating collections is the
# slow part on a server (about 2.5 s to load each), so the meta collection is made once per
# session and each test only creates its own group.
@pytest.fixture(scope="session")
def _lite_stores(lite_uri: str) -> Iterator[dict[str, MilvusStore]]:
    cache: dict[str, MilvusStore] = {}
    yield cache
    _close_all(cache)


@pytest.fixture(scope="session")
def _standalone_stores(standalone_uri: str) -> Iterator[dict[str, MilvusStore]]:
    cache: dict[str, MilvusStore] = {}
    yield cache
    _close_all(cache)


SESSION_PREFIX = f"t{uuid.uuid4().hex[:8]}"
# The product's 10 s read bound turns a loaded 2-core test machine into DEADLINE_EXCEEDED
# failures (seen at load 12 with several suites running); the bound itself is tested apart.
READ_TIMEOUT_S = 60.0


@pytest.fixture
def make_store(request: pytest.FixtureRequest, backend: str) -> Iterator[StoreFactory]:
    """The session store for this backend and index type, or with ``uri_override`` /
    ``prefix`` / other ``MilvusStore`` options a store of its own (closed after the test).
    On the fake backend: a fresh :class:`FakeStore` (FLAT only, no options); on faiss a
    fresh :class:`FaissStore` whose HNSW collections use the graph from the first row."""
    if backend == "faiss":
        folder = request.getfixturevalue("tmp_path")
        made: list[FaissStore] = []

        def embedded(index_type: str = "HNSW", **options: Any) -> Any:
            if options:
                raise AssertionError("Milvus options on the faiss store: mark it milvus_only")
            store = FaissStore(
                folder / f"store-{len(made)}.sqlite3",
                prefix=SESSION_PREFIX,
                index_type=index_type,
                hnsw_ef_search=64,
                exact_max=0,
            )
            made.append(store)
            return store

        yield embedded
        for s in made:
            s.close()
        return
    if backend == "fake":

        def fake(index_type: str = "FLAT", **options: Any) -> Any:
            if index_type != "FLAT" or options:
                raise AssertionError("Milvus options on the fake store: mark the test milvus_only")
            return FakeStore()

        yield fake
        return
    uri = request.getfixturevalue(f"{backend}_uri")
    shared: dict[str, MilvusStore] = request.getfixturevalue(f"_{backend}_stores")
    own: list[MilvusStore] = []

    def factory(
        index_type: str = "HNSW",
        prefix: str | None = None,
        uri_override: str | None = None,
        **options: Any,
    ) -> MilvusStore:
        if prefix is None and uri_override is None and not options:
            if index_type not in shared:
                shared[index_type] = MilvusStore(
                    uri,
                    prefix=SESSION_PREFIX,
                    index_type=index_type,
                    hnsw_ef_search=64,
                    read_timeout_s=READ_TIMEOUT_S,
                )
            return shared[index_type]
        store = MilvusStore(
            uri_override or uri,
            prefix=prefix or f"t{uuid.uuid4().hex[:10]}",
            index_type=index_type,
            hnsw_ef_search=64,
            **({"read_timeout_s": READ_TIMEOUT_S} | options),
        )
        own.append(store)
        return store

    yield factory
    for store in own:
        store.close()


@pytest.fixture
def new_group(make_store: StoreFactory) -> Iterator[Callable[..., str]]:
    """Create a uniquely named group (dropped after the test) and return its name."""
    made: list[tuple[MilvusStore, str]] = []

    def factory(store: MilvusStore, dim: int = DIM, fingerprint: str = FINGERPRINT) -> str:
        name = f"g{uuid.uuid4().hex[:12]}"
        store.ensure_group(name, dim=dim, model_name=MODEL, fingerprint=fingerprint)
        made.append((store, name))
        return name

    yield factory
    for store, name in made:
        with contextlib.suppress(Exception):
            store.drop_group(name)


@pytest.fixture
def store(make_store: StoreFactory) -> MilvusStore:
    """The session FLAT store (exact answers) of this test's backend."""
    return make_store("FLAT")


@pytest.fixture
def g(store: MilvusStore, new_group: Callable[..., str]) -> str:
    """A fresh, empty group of :data:`DIM` in ``store``."""
    return new_group(store)


@pytest.fixture
def lite_path(tmp_path: Path) -> str:
    return str(tmp_path / "own.db")
