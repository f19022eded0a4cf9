"""A real gateway app over the in-memory fakes, served on loopback: for the client and CLI
tests, which need real HTTP but no model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.unit.usecase_fakes import FakeBlobs, FakeEncoder, FakeStore

from clipsearch.api.app import create_app
from clipsearch.bench.loopback import serve
from clipsearch.core.config import Settings


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the gateway (one per test module; limits low enough to be hit)."""
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("gateway"),
        max_batch_queries=4,
        max_top_k=20,
    )
    app = create_app(settings, encoder=FakeEncoder(), store=FakeStore(), blobs=FakeBlobs())
    with serve(app, name="fake-gateway") as base:
        yield base
