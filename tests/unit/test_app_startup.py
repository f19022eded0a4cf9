"""App start-up over fakes: the default group is created, a model mismatch does not stop the
start, and each app has its own metrics registry."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.unit.usecase_fakes import FakeBlobs, FakeEncoder, FakeStore

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path)


def test_startup_creates_default_group(tmp_path: Path) -> None:
    store = FakeStore()
    app = create_app(settings(tmp_path), encoder=FakeEncoder(), store=store, blobs=FakeBlobs())
    with TestClient(app) as client:
        assert store.list_groups() == ["default"]
        assert client.get("/readyz").status_code == 200


def test_startup_serves_despite_another_models_default_collection(tmp_path: Path) -> None:
    """Switching the main model never stops the start: the default collection of the old
    model answers 409 model_not_configured naming that model, another collection is
    served, and /v1/stats lists the old one as not servable."""
    store = FakeStore()
    store.ensure_group("default", dim=8, model_name="old", fingerprint="old-fp")
    app = create_app(
        settings(tmp_path), encoder=FakeEncoder("new-fp"), store=store, blobs=FakeBlobs()
    )
    with TestClient(app) as client:
        r = client.post("/v1/search/text", json={"query": "a"})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "model_not_configured"
        assert "'old'" in r.json()["error"]["message"]
        store.ensure_group("fresh", dim=8, model_name="fake-model", fingerprint="new-fp")
        ok = client.post("/v1/search/text", params={"collection": "fresh"}, json={"query": "a"})
        assert ok.status_code == 200, ok.text
        stats = client.get("/v1/stats").json()["collections"]
        assert stats["default"]["servable"] is False
        assert "old-fp" in stats["default"]["reason"]
        assert stats["fresh"]["servable"] is True


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
