"""Switch a gateway from local to service mode over the same collection: same results.

The collection is built in local mode; the gateway is then restarted in service mode on the
same data dir (no re-index). The fingerprints match (same model folder), so the collection
is accepted, and every search returns the same hits in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import EncoderMode, Settings
from clipsearch.demo import shapes
from tests.helpers import encoded
from tests.service.conftest import MODEL_NAME, ClipServer

pytestmark = pytest.mark.encoder_venv


def run_searches(client: TestClient, queries: list[str], pngs: list[bytes]) -> list[Any]:
    results = []
    for q in queries:
        for target in ("images", "texts"):
            r = client.post("/v1/search/text", json={"query": q, "target": target, "top_k": 5})
            assert r.status_code == 200, r.text
            results.append([(h["id"], round(h["score"], 3)) for h in r.json()["hits"]])
    for data in pngs:
        r = client.post(
            "/v1/search/image",
            files={"file": ("q.png", data, "image/png")},
            data={"top_k": "5"},
        )
        assert r.status_code == 200, r.text
        results.append([(h["id"], round(h["score"], 3)) for h in r.json()["hits"]])
    return results


def test_search_results_are_identical_in_both_modes(
    clip_server: ClipServer, service_model: Path, tmp_path: Path
) -> None:
    samples = list(shapes.iter_samples(40, shapes.HELDOUT_SEED))
    pngs = [encoded(image) for image, _ in samples]
    captions = [caption for _, caption in samples]
    queries = [*captions[:4], "a big red circle", "two green squares"]
    query_pngs = [encoded(image) for image, _ in shapes.iter_samples(3, seed=99)]

    base: dict[str, Any] = {
        "_env_file": None,
        "data_dir": tmp_path,
        "model_name": MODEL_NAME,
        "model_path": service_model,
    }
    local_settings = Settings(**base)
    with TestClient(create_app(local_settings), raise_server_exceptions=False) as client:
        files = [("files", (f"s{i}.png", d, "image/png")) for i, d in enumerate(pngs)]
        r = client.post("/v1/images", files=files, data={"captions": captions})
        assert r.status_code == 200, r.text
        assert all(item["status"] == "stored" for item in r.json()["items"])
        local_results = run_searches(client, queries, query_pngs)

    service_settings = Settings(
        **base, encoder_mode=EncoderMode.service, encoder_url=clip_server.url
    )
    with TestClient(create_app(service_settings), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200
        service_results = run_searches(client, queries, query_pngs)

    assert all(len(hits) == 5 for hits in local_results)
    assert service_results == local_results
