"""Fixtures shared by every test package (helpers that are not fixtures: ``tests/helpers``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipsearch.core.config import get_settings


@pytest.fixture
def clean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``get_settings()`` as on a fresh machine: no ``CLIPSEARCH_*`` variable of the
    caller's shell, the data dir in this test's tmp dir, the settings cache emptied."""
    for name in list(os.environ):
        if name.startswith("CLIPSEARCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLIPSEARCH_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
