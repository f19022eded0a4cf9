"""App start-up over fakes: the default group is created, a model mismatch is refused, and
each app has its own metrics registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit.usecase_fakes import FakeBlobs, FakeEncoder, FakeStore

from clipsearch.api.app import StartupError, create_app
from clipsearch.core.config import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path)


def test_startup_creates_default_group(tmp_path: Path) -> None:
    store = FakeStore()
    app = create_app(settings(tmp_path), encoder=FakeEncoder(), store=store, blobs=FakeBlobs())
    with TestClient(app) as client:
        assert store.list_groups() == ["default"]
        assert client.get("/readyz").status_code == 200


def test_startup_refuses_another_models_collection(tmp_path: Path) -> None:
    store = FakeStore()
    store.ensure_group("default", dim=8, model_name="old", fingerprint="old-fp")
    app = create_app(
        settings(tmp_path), encoder=FakeEncoder("new-fp"), store=store, blobs=FakeBlobs()
    )
    with pytest.raises(StartupError, match=r"old-fp.*new-fp.*new collection"), TestClient(app):
        pass


def test_each_app_has_its_own_metrics(tmp_path: Path) -> None:
    apps = [
        create_app(settings(tmp_path), encoder=FakeEncoder(), store=FakeStore(), blobs=FakeBlobs())
        for _ in range(2)
    ]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        for _ in range(3):
            a.get("/healthz")
        b.get("/healthz")
        text_a, text_b = a.get("/metrics").text, b.get("/metrics").text
    line = 'clipsearch_http_requests_total{method="GET",route="/healthz",status="200"}'
    assert f"{line} 3.0" in text_a
    assert f"{line} 1.0" in text_b
