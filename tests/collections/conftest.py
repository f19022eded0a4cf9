"""The collection suite: every test in this package runs unchanged against a gateway on
Milvus Lite and on a real Milvus standalone server (the congruence tests of qdrant-client).

``api`` is one gateway per test module and backend (the tiny ``shapes`` model, a data dir
of its own, a collection prefix of its own), so modules never see each other's data. Tests
isolate themselves further with ``collection``, a fresh collection name per test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.demo import shapes
from tests.helpers import SHAPES_MODEL, encoded, second_model


@dataclass
class Api:
    """A running gateway of the suite and the backend under it (``lite``/``standalone``)."""

    client: TestClient
    settings: Settings
    backend: str

    def upload(
        self,
        pngs: Sequence[bytes],
        captions: Sequence[str] | None = None,
        collection: str | None = None,
        **form: Any,
    ) -> httpx.Response:
        """``POST /v1/images`` with ``pngs`` as files (and their captions, and form fields)."""
        files = [("files", (f"p{i:04d}.png", d, "image/png")) for i, d in enumerate(pngs)]
        data: dict[str, Any] = dict(form)
        if captions is not None:
            data["captions"] = list(captions)
        params = {"collection": collection} if collection else {}
        response: httpx.Response = self.client.post(
            "/v1/images", files=files, data=data, params=params
        )
        return response

    def stored(
        self, pngs: Sequence[bytes], captions: Sequence[str] | None = None, **kw: Any
    ) -> list[str]:
        """Upload and assert every item was stored (or already there); their ids."""
        r = self.upload(pngs, captions, **kw)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert all(i["status"] in ("stored", "duplicate", "updated") for i in items), items
        return [str(i["id"]) for i in items]


def pictures(n: int, seed: int = 11) -> tuple[list[bytes], list[str]]:
    """``n`` distinct shape pictures (PNG) with their captions, deterministic in ``seed``."""
    pngs, captions = [], []
    for image, caption in shapes.iter_samples(n, seed):
        pngs.append(encoded(image))
        captions.append(caption)
    return pngs, captions


# Every backend the suite runs on: Milvus Lite, the SQLite + faiss embedded store, and a
# real Milvus standalone server.
BACKENDS = ["lite", "faiss", pytest.param("standalone", marks=pytest.mark.standalone)]


def suite_settings(backend: str, tmp: Any, uri: str, **overrides: Any) -> Settings:
    """Settings of a suite gateway: ``uri`` is a Lite file or the standalone server (empty
    on faiss, which keeps its file in the data dir)."""
    return Settings(
        _env_file=None,
        data_dir=tmp,
        model_path=SHAPES_MODEL,
        milvus_uri=uri,
        embedded_store="faiss" if backend == "faiss" else "lite",
        milvus_read_timeout_s=60.0,  # a loaded 2-core machine, not a restart (see tests/store)
        collection_prefix=f"c{uuid.uuid4().hex[:10]}",
        **overrides,
    )


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    backend = str(request.param)
    tmp = tmp_path_factory.mktemp(f"suite-{backend}")
    settings = suite_settings(backend, tmp, backend_uri(request, backend, tmp))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, settings, backend)


@pytest.fixture
def collection() -> str:
    """A collection name no other test uses."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(5)


# --- more gateways: collections and migration (tests/collections/test_collections.py) ----
@pytest.fixture(scope="session")
def model_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The second model folder (``shapes-tiny-v2``, see ``tests.helpers.second_model``),
    made once per session."""
    return second_model(tmp_path_factory.mktemp("models") / "shapes-v2")


@contextlib.contextmanager
def gateway(settings: Settings, backend: str) -> Iterator[Api]:
    """A gateway of the suite on ``settings`` (e.g. another main model, extra models)."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, settings, backend)


def backend_uri(request: pytest.FixtureRequest, backend: str, tmp: Path) -> str:
    """The Milvus URI of ``backend`` for a module's gateways: a Lite file in ``tmp``, none
    (faiss), or the session's standalone server."""
    if backend == "lite":
        return str(tmp / "milvus.db")
    if backend == "faiss":
        return ""
    return str(request.getfixturevalue("standalone_uri"))
