from pathlib import Path

import pytest
from pydantic import ValidationError

from clipsearch.core.config import EncoderMode, IndexType, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    import os

    for key in list(os.environ):
        if key.startswith("CLIPSEARCH_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = Settings()
    assert s.encoder_mode is EncoderMode.local
    assert s.model_name == "ViT-B-32::openai"
    assert s.index_type is IndexType.HNSW
    assert s.resolved_milvus_uri == str(Path("data") / "milvus.db")


def test_the_embedded_store_is_faiss_unless_older_lite_data_is_there(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path)
    assert s.embedded_store == "auto"
    assert s.store_kind == "faiss"
    assert s.store_location == str(tmp_path / "store.sqlite3")
    (tmp_path / "milvus.db").write_bytes(b"")  # a data dir of an older version
    assert s.store_kind == "lite"
    assert s.store_location == str(tmp_path / "milvus.db")
    s.faiss_store_path.write_bytes(b"")  # both: the faiss store was chosen before
    assert s.store_kind == "faiss"
    for named in ("lite", "faiss"):
        assert Settings(_env_file=None, data_dir=tmp_path, embedded_store=named).store_kind == named
    uri = "http://127.0.0.1:19530"
    assert Settings(_env_file=None, data_dir=tmp_path, milvus_uri=uri).store_kind == "standalone"


def test_env_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLIPSEARCH_ENCODER_MODE", "service")
    monkeypatch.setenv("CLIPSEARCH_MILVUS_URI", "http://127.0.0.1:19530")
    monkeypatch.setenv("CLIPSEARCH_MAX_TOP_K", "7")
    monkeypatch.setenv("CLIPSEARCH_CORS_ORIGINS", "http://a.test, http://b.test")
    monkeypatch.setenv("CLIPSEARCH_MODEL_PATH", str(tmp_path))
    s = Settings()
    assert s.encoder_mode is EncoderMode.service
    assert s.store_kind == "standalone"
    assert s.max_top_k == 7
    assert s.cors_origins == ["http://a.test", "http://b.test"]
    assert s.model_path == tmp_path


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CLIPSEARCH_PORT=9123\n")
    assert Settings().port == 9123


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("CLIPSEARCH_ENCODER_MODE", "gpu", "encoder_mode"),
        ("CLIPSEARCH_PORT", "70000", "port"),
        ("CLIPSEARCH_MAX_TOP_K", "0", "max_top_k"),
        ("CLIPSEARCH_INDEX_TYPE", "IVF_PQ", "index_type"),
        ("CLIPSEARCH_COLLECTION_PREFIX", "bad-prefix!", "collection_prefix"),
        ("CLIPSEARCH_LOG_LEVEL", "loud", "log_level"),
        ("CLIPSEARCH_MAX_UPLOAD_BYTES", "many", "max_upload_bytes"),
    ],
)
def test_invalid_values_name_the_field(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, field: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    assert field in str(err.value)


def test_missing_model_path_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLIPSEARCH_MODEL_PATH", str(tmp_path / "nope"))
    with pytest.raises(ValidationError, match=r"textual\.onnx"):
        Settings()
