"""The model catalog and its Hugging Face path, against a loopback imitation of the hub:
good, wrong checksum, truncated (resumed), 404, offline (nothing listening), cached offline."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from clipsearch.core.config import Settings
from clipsearch.encoder import catalog
from clipsearch.encoder.hf_download import MANIFEST
from clipsearch.encoder.layouts import IMMICH, IMMICH_FILES
from clipsearch.encoder.local import LocalEncoder
from clipsearch.encoder.model_files import (
    ONNX_MODELS,
    ModelResolutionError,
    cache_folder_name,
    image_size_for_name,
    resolve_model_files,
)
from tests.encoder.hub_fixture import COMMIT, FakeHub, folder_files
from tests.encoder.layout_fixtures import build_immich_dir
from tests.helpers import free_port

REPO = "immich-app/XLM-Roberta-Large-Vit-B-16Plus"


@pytest.fixture(scope="module")
def repo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = build_immich_dir(tmp_path_factory.mktemp("hubrepo") / "m", "mclip")
    files = folder_files(folder)
    assert set(IMMICH_FILES) <= set(files)
    return files


def _settings(tmp_path: Path, endpoint: str, name: str = REPO) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        model_name=name,
        model_cache_dir=tmp_path / "cache",
        hf_endpoint=endpoint,
        model_download_timeout_s=5,
    )


def test_catalog_data_is_consistent() -> None:
    for name in ONNX_MODELS:
        entry = catalog.lookup(name)
        assert entry is not None
        assert entry.source == catalog.CLIP_AS_SERVICE
        assert entry.modes == (catalog.LOCAL, catalog.SERVICE)
    hf = [e for e in catalog.CATALOG.values() if e.source == catalog.HUGGINGFACE]
    assert {"immich-app/nllb-clip-base-siglip__v1", "immich-app/ViT-B-16-SigLIP2__webli", REPO} <= {
        e.name for e in hf
    }
    for e in hf:
        assert e.layout == IMMICH
        assert e.files == IMMICH_FILES
        assert e.modes == (catalog.LOCAL,)
        assert e.revision is None or re.fullmatch(r"[0-9a-f]{40}", e.revision)
        assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in e.sha256.values())
    mclip = [e for e in catalog.CATALOG.values() if e.name.startswith("M-CLIP/")]
    assert len(mclip) == 4
    for e in mclip:
        assert e.modes == (catalog.SERVICE,)
        assert e.local_name in catalog.CATALOG
        assert image_size_for_name(e.name) in (224, 240)
    assert image_size_for_name("M-CLIP/XLM-Roberta-Large-Vit-B-16Plus") == 240
    assert catalog.lookup("not-a-model") is None


def test_good_download_pins_the_commit_and_loads(
    tmp_path: Path, repo_files: dict[str, bytes]
) -> None:
    with FakeHub({REPO: repo_files}) as hub:
        settings = _settings(tmp_path, hub.url)
        files = resolve_model_files(settings)
    folder = tmp_path / "cache" / cache_folder_name(REPO)
    assert files.folder == folder
    assert files.layout == IMMICH
    for rel in IMMICH_FILES:
        assert (folder / rel).read_bytes() == repo_files[rel]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["revision"] == COMMIT
    assert set(manifest["files"]) == set(IMMICH_FILES)
    assert manifest["files"]["textual/model.onnx"][0] == "sha256"
    assert manifest["files"]["config.json"][0] == "git-sha1"
    # main is asked once; every byte is fetched at the pinned commit.
    assert [(m, p) for m, p, _ in hub.requests if "/resolve/main/" in p] == [
        ("HEAD", f"/{REPO}/resolve/main/{IMMICH_FILES[0]}")
    ]
    assert all(f"/resolve/{COMMIT}/" in p for m, p, _ in hub.requests if m == "GET")
    assert not list(folder.rglob("*.part"))
    enc = LocalEncoder(files, model_name=REPO)
    assert asyncio.run(enc.encode_texts(["红色的圆形"])).shape == (1, 12)

    # Offline afterwards (the hub is gone): the manifest and stamps suffice.
    assert resolve_model_files(_settings(tmp_path, f"http://127.0.0.1:{free_port()}")) == files


def test_wrong_checksum_is_refused(tmp_path: Path, repo_files: dict[str, bytes]) -> None:
    with FakeHub({REPO: repo_files}) as hub:
        hub.corrupt.add("visual/model.onnx")
        with pytest.raises(ModelResolutionError, match="sha256 mismatch") as err:
            resolve_model_files(_settings(tmp_path, hub.url))
    folder = tmp_path / "cache" / cache_folder_name(REPO)
    assert not (folder / "visual/model.onnx").exists()
    assert not list(folder.rglob("*.part"))
    assert "Fix:" in str(err.value)
    assert (
        "files" not in json.loads((folder / MANIFEST).read_text())
        or not json.loads((folder / MANIFEST).read_text())["files"]
    )


def test_truncated_download_resumes(tmp_path: Path, repo_files: dict[str, bytes]) -> None:
    with FakeHub({REPO: repo_files}) as hub:
        hub.truncate.add("textual/model.onnx")
        files = resolve_model_files(_settings(tmp_path, hub.url))
    assert files.textual.read_bytes() == repo_files["textual/model.onnx"]
    gets = [(p, r) for m, p, r in hub.requests if m == "GET" and p.endswith("textual/model.onnx")]
    half = len(repo_files["textual/model.onnx"]) // 2
    assert gets[0][1] is None
    assert gets[1][1] == f"bytes={half}-"  # resumed where the drop left it


def test_not_on_the_hub_is_a_404_line(tmp_path: Path, repo_files: dict[str, bytes]) -> None:
    with (
        FakeHub({"immich-app/other": repo_files}) as hub,
        pytest.raises(ModelResolutionError) as err,
    ):
        resolve_model_files(_settings(tmp_path, hub.url))
    message = str(err.value)
    assert "HTTP 404" in message
    assert "\n" not in message
    assert "CLIPSEARCH_MODEL_PATH" in message


def test_offline_with_nothing_cached_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(ModelResolutionError) as err:
        resolve_model_files(_settings(tmp_path, endpoint))
    message = str(err.value)
    assert "\n" not in message
    assert "cannot be reached" in message
    for fix in ("CLIPSEARCH_MODEL_PATH", "CLIPSEARCH_HF_ENDPOINT", "--local-dir", REPO):
        assert fix in message


def test_prefilled_cache_is_used_offline(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / cache_folder_name(REPO)
    build_immich_dir(folder, "mclip")
    files = resolve_model_files(_settings(tmp_path, f"http://127.0.0.1:{free_port()}"))
    assert files.folder == folder
    (folder / "visual/preprocess_cfg.json").unlink()  # incomplete: the hub is needed again
    with pytest.raises(ModelResolutionError, match="cannot be reached"):
        resolve_model_files(_settings(tmp_path, f"http://127.0.0.1:{free_port()}"))


def test_mclip_name_in_local_mode_points_at_the_onnx_export(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9", name="M-CLIP/XLM-Roberta-Large-Vit-B-32")
    with pytest.raises(ModelResolutionError, match="immich-app/XLM-Roberta-Large-Vit-B-32"):
        resolve_model_files(settings)
