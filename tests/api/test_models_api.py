"""GET /v1/models through the real app: the configured model (loaded or not), the cached
model folders of both layouts, the catalog per mode; read scope; folders for admins only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.core.keys import Scope, make_entry, new_key
from clipsearch.encoder.service import ServiceEncoder
from clipsearch.usecases.models import configured_model
from tests.encoder.layout_fixtures import build_immich_dir
from tests.encoder.onnx_fixtures import build_model_dir
from tests.helpers import SHAPES_MODEL, free_port

MCLIP_FOLDER = "immich-app-XLM-Roberta-Large-Vit-B-16Plus"


def _settings(root: Path, **kw: Any) -> Settings:
    cache = root / "cache"
    build_immich_dir(cache / MCLIP_FOLDER, "mclip")
    build_model_dir(cache / "my-own-model", config={"name": "my-own", "dim": 16})
    (cache / "half-downloaded").mkdir()
    return Settings(
        _env_file=None,
        data_dir=root / "data",
        model_path=SHAPES_MODEL,
        model_cache_dir=cache,
        index_type="FLAT",
        **kw,
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = _settings(tmp_path_factory.mktemp("models"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_models_report(client: TestClient) -> None:
    r = client.get("/v1/models")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "local"
    conf = body["configured"]
    assert conf["name"] == "shapes-tiny"
    assert conf["layout"] == "clip-server"
    assert conf["dim"] == 128
    assert conf["score"] == "cosine"
    assert conf["folder"] == str(SHAPES_MODEL)  # no keys configured: everyone is admin
    assert isinstance(conf["loaded"], bool)
    # A search loads the model; the report then says so.
    assert client.post("/v1/search/text", json={"query": "a red circle"}).status_code == 200
    conf = client.get("/v1/models").json()["configured"]
    assert conf["loaded"] is True
    assert len(conf["fingerprint"] or "") == 64

    cached = {m["name"]: m for m in body["cached"]}
    assert set(cached) == {"immich-app/XLM-Roberta-Large-Vit-B-16Plus", "my-own"}
    mclip = cached["immich-app/XLM-Roberta-Large-Vit-B-16Plus"]
    assert (mclip["layout"], mclip["dim"], mclip["source"]) == ("immich", 12, "huggingface")
    assert mclip["languages"] == ["multilingual"]
    assert cached["my-own"]["layout"] == "clip-server"
    assert cached["my-own"]["source"] == "local folder"

    catalog = {m["name"]: m for m in body["catalog"]}
    assert catalog["ViT-B-32::openai"]["modes"] == ["local", "service"]
    assert catalog["M-CLIP/XLM-Roberta-Large-Vit-B-16Plus"]["modes"] == ["service"]
    assert catalog["M-CLIP/XLM-Roberta-Large-Vit-B-16Plus"]["dim"] == 640
    assert catalog["immich-app/ViT-B-16-SigLIP2__webli"]["score"] == "sigmoid"
    assert catalog["immich-app/nllb-clip-base-siglip__v1"]["layout"] == "immich"


def test_models_needs_a_key_and_shows_folders_to_admins(tmp_path: Path) -> None:
    keys = {scope: new_key() for scope in (Scope.read, Scope.admin)}
    entries = ",".join(make_entry(k, s, s.name).line() for s, k in keys.items())
    settings = _settings(tmp_path, api_keys=entries)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.get("/v1/models")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "missing_api_key"
        bad = c.get("/v1/models", headers={"Authorization": "Bearer cs_nope"})
        assert bad.json()["error"]["code"] == "invalid_api_key"
        read = c.get("/v1/models", headers={"Authorization": f"Bearer {keys[Scope.read]}"})
        assert read.status_code == 200
        assert read.json()["configured"]["folder"] is None
        assert all(m["folder"] is None for m in read.json()["cached"])
        admin = c.get("/v1/models", headers={"Authorization": f"Bearer {keys[Scope.admin]}"})
        assert admin.json()["configured"]["folder"] == str(SHAPES_MODEL)


def test_models_route_is_documented(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/v1/models"]["get"]
    assert op["summary"]
    assert {"200", "401", "403"} <= set(op["responses"])
    schema = doc["components"]["schemas"]["ModelsOut"]
    assert schema["examples"][0]["configured"]["layout"] == "immich"


def test_service_mode_view_before_the_server_answers(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, encoder_mode="service")
    name = "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus"
    enc = ServiceEncoder(f"http://127.0.0.1:{free_port()}", model_name=name)
    view = configured_model(settings, enc)
    assert view.name == name
    assert view.dim is None  # learned from the server, never from a table
    assert view.loaded is False
    assert view.modes == ["service"]
    assert view.languages == ["multilingual"]
    asyncio.run(enc.close())
