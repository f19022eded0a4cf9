"""``/v1/stats`` reports the local encoder's runtime; a gateway on the int8 runtime stores and
finds pictures under the int8 model's own fingerprint; a runtime that cannot run refuses to
start."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.demo import shapes
from clipsearch.encoder.protocol import EncoderError
from clipsearch.encoder.quantize import int8_folder, read_metadata
from tests.encoder.runtime_helpers import AVAILABLE_RUNTIMES, shapes_with_int8
from tests.helpers import encoded


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shapes_with_int8(tmp_path_factory.mktemp("runtime-api"))


def _settings(model: Path, runtime: str, data: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data, model_path=model, encoder_runtime=runtime)


@pytest.mark.parametrize("runtime", AVAILABLE_RUNTIMES)
def test_stats_reports_the_runtime(runtime: str, model: Path, tmp_path: Path) -> None:
    with TestClient(create_app(_settings(model, runtime, tmp_path))) as client:
        body = client.get("/v1/stats").json()
    encoder = body["encoder"]
    assert encoder["mode"] == "local"
    assert encoder["runtime"] == runtime
    assert encoder["health"] == "ok"
    expected = {"fp32": {"fp32"}, "int8": {"int8"}, "openvino": {"bf16", "f32"}}[runtime]
    assert encoder["precision"] in expected
    fp32_fingerprint = read_metadata(model)["fingerprint"]
    if runtime == "int8":
        assert encoder["fingerprint"] == read_metadata(int8_folder(model))["fingerprint"]
        assert encoder["fingerprint"] != fp32_fingerprint
        assert encoder["model_name"].endswith("-int8")
    else:
        assert encoder["fingerprint"] == fp32_fingerprint
    # The default collection belongs to the model that runs.
    assert body["collections"]["default"]["fingerprint"] == encoder["fingerprint"]


def test_int8_gateway_ingests_and_finds_pictures(model: Path, tmp_path: Path) -> None:
    pngs = [encoded(image) for image, _ in shapes.iter_samples(8, shapes.HELDOUT_SEED)]
    with TestClient(create_app(_settings(model, "int8", tmp_path))) as client:
        files = [("files", (f"{i}.png", data, "image/png")) for i, data in enumerate(pngs)]
        r = client.post("/v1/images", files=files)
        assert r.status_code == 200, r.text
        first = r.json()["items"][0]["id"]
        hits = client.post("/v1/search/image", json={"image_id": first, "top_k": 1})
        assert hits.status_code == 200, hits.text
        assert hits.json()["hits"][0]["id"] == first


def test_a_runtime_that_cannot_run_refuses_to_start(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipsearch.encoder import openvino_session

    monkeypatch.setattr(openvino_session, "openvino_available", lambda: False)
    app = create_app(_settings(model, "openvino", tmp_path))
    with pytest.raises(EncoderError, match=r"clipsearch\[openvino\]"), TestClient(app):
        pass
