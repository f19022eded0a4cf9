"""``rerank: true`` in service mode: a text query's page goes to a real clip-server's
``/rank`` with the pictures' bytes (or the texts), which encodes them afresh; its cosines
agree with the search's scores (same model), its softmax is over the page, best first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.demo import shapes
from clipsearch.encoder.clip_protocol import RankScore
from clipsearch.encoder.service import ServiceEncoder
from tests.helpers import encoded
from tests.service.conftest import ClipServer, service_settings

pytestmark = pytest.mark.encoder_venv


def test_text_rerank_goes_through_clip_servers_rank(
    clip_server: ClipServer, service_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = ServiceEncoder.rank

    async def counted(
        self: ServiceEncoder, text: str, cands: Sequence[str | bytes]
    ) -> list[RankScore]:
        calls.append(len(cands))
        return await real(self, text, cands)

    monkeypatch.setattr(ServiceEncoder, "rank", counted)
    samples = list(shapes.iter_samples(12, seed=21))
    pngs = [encoded(image) for image, _ in samples]
    captions = [caption for _, caption in samples]
    settings = service_settings(tmp_path, clip_server.url, service_model)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        files = [("files", (f"s{i}.png", d, "image/png")) for i, d in enumerate(pngs)]
        assert client.post("/v1/images", files=files, data={"captions": captions}).is_success
        for target in ("images", "texts"):
            body: dict[str, Any] = {"query": captions[0], "target": target, "top_k": 5}
            r = client.post("/v1/search/text", json={**body, "rerank": True})
            assert r.status_code == 200, r.text
            hits = r.json()["hits"]
            assert len(hits) == 5
            softmax = [h["rerank_score"] for h in hits]
            assert softmax == sorted(softmax, reverse=True)
            assert sum(softmax) == pytest.approx(1.0, abs=1e-4)
            cos = np.array([h["rerank_cosine"] for h in hits])
            np.testing.assert_allclose(cos, [h["score"] for h in hits], atol=2e-3)
        image = client.post(
            "/v1/search/image",
            files={"file": ("q.png", pngs[1], "image/png")},
            data={"rerank": "true", "top_k": "3"},
        )
        assert image.status_code == 200, image.text
        assert [h["rerank_cosine"] for h in image.json()["hits"]] == [
            h["score"] for h in image.json()["hits"]
        ]  # an image query is scored from the search's cosines
    assert calls == [5, 5]  # both text searches, none for the image query
