"""Settings: one pydantic-settings class, env prefix ``CLIPSEARCH_``, built by a factory.

Nothing here reads the environment at import time; call :func:`get_settings` (cached) or
build ``Settings()`` directly in tests.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from clipsearch.core.names import COLLECTION_PATTERN

DEFAULT_MODEL_BASE_URL = (
    "https://clip-as-service.s3.us-east-2.amazonaws.com/models-436c69702d61732d53657276696365/onnx/"
)


class EncoderMode(StrEnum):
    local = "local"
    service = "service"


class EncoderRuntime(StrEnum):
    """How the local encoder runs (see :mod:`clipsearch.encoder.session`)."""

    fp32 = "fp32"
    int8 = "int8"
    openvino = "openvino"


class Consistency(StrEnum):
    """Milvus read consistency (see ``store/milvus_consistency.py``)."""

    session = "session"
    bounded = "bounded"
    strong = "strong"


class EmbeddedStore(StrEnum):
    """The store used when ``CLIPSEARCH_MILVUS_URI`` is empty (see ``store/faiss_store.py``).
    ``auto``: faiss, unless the data dir holds a Milvus Lite file and no faiss store (data
    of an older version, kept in use rather than hidden behind an empty store)."""

    auto = "auto"
    lite = "lite"
    faiss = "faiss"


class IndexType(StrEnum):
    HNSW = "HNSW"
    FLAT = "FLAT"


class Settings(BaseSettings):
    """All runtime configuration. Every field is documented in ``.env.example``."""

    model_config = SettingsConfigDict(
        env_prefix="CLIPSEARCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        protected_namespaces=("settings_",),
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Path("data")
    milvus_uri: str = ""
    milvus_token: str = ""
    # With no Milvus URI: Milvus Lite (a file) or SQLite + in-process faiss.
    embedded_store: EmbeddedStore = EmbeddedStore.auto
    # The faiss store searches exactly up to this many rows per collection, HNSW past it.
    faiss_exact_max: int = Field(default=20000, ge=0)
    collection_prefix: str = Field(default="clipsearch", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
    default_collection: str = Field(default="default", pattern=COLLECTION_PATTERN)
    index_type: IndexType = IndexType.HNSW
    hnsw_m: int = Field(default=16, ge=4, le=64)
    hnsw_ef_construction: int = Field(default=200, ge=8, le=2048)
    hnsw_ef_search: int = Field(default=128, ge=1, le=32768)
    milvus_flush_rows: int = Field(default=2000, ge=0)
    milvus_flush_idle_s: float = Field(default=2.0, ge=0)
    milvus_write_retry_s: float = Field(default=60.0, ge=0)
    # Strong waits for the server's next time tick (a 200 ms floor per search on a server);
    # Session still reads this process's own writes.
    milvus_consistency: Consistency = Consistency.session

    # --- encoder -------------------------------------------------------------------------
    encoder_mode: EncoderMode = EncoderMode.local
    model_name: str = "ViT-B-32::openai"
    model_path: Path | None = None
    # `path` or `name=path` model folders besides the main one (see encoder/registry.py).
    extra_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    model_cache_dir: Path | None = None
    model_base_url: str = DEFAULT_MODEL_BASE_URL
    model_download_timeout_s: float = Field(default=60.0, gt=0)
    hf_endpoint: str = "https://huggingface.co"
    encoder_batch_size: int = Field(default=32, ge=1, le=1024)
    encoder_threads: int = Field(default=0, ge=0, le=256)
    encoder_runtime: EncoderRuntime = EncoderRuntime.fp32
    encoder_url: str = "http://127.0.0.1:51001"
    encoder_timeout_s: float = Field(default=30.0, gt=0)
    encoder_fallback: Annotated[str, Field(pattern=r"^(|local)$")] = ""
    encoder_retries: int = Field(default=2, ge=0, le=10)
    encoder_backoff_s: float = Field(default=0.2, ge=0)
    encoder_breaker_threshold: int = Field(default=5, ge=1, le=1000)
    encoder_breaker_cooldown_s: float = Field(default=10.0, gt=0)
    encoder_max_connections: int = Field(default=16, ge=1, le=1024)
    encoder_start_period_s: float = Field(default=120.0, ge=0)

    # --- HTTP ----------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error|critical)$")

    # --- limits --------------------------------------------------------------------------
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_request_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(default=40_000_000, ge=1)
    max_batch_queries: int = Field(default=64, ge=1, le=16384)
    max_top_k: int = Field(default=100, ge=1, le=16384)
    # Deepest offset + top_k of a search (past Milvus' 16,384 the store pages by score).
    max_search_depth: int = Field(default=50_000, ge=1, le=1_000_000)
    # Near duplicates: images one /duplicates page scans, neighbours searched per image.
    duplicates_max_scan: int = Field(default=10_000, ge=1, le=1_000_000)
    duplicates_neighbours: int = Field(default=32, ge=1, le=1024)
    max_text_chars: int = Field(default=2000, ge=1)
    max_files_per_request: int = Field(default=64, ge=1)
    max_texts_per_request: int = Field(default=1024, ge=1)
    # Most records one GET /v1/images or /v1/texts page may ask for (?limit=).
    max_browse_limit: int = Field(default=1000, ge=1, le=16384)
    # Largest file POST /v1/collections/{name}/import accepts (spooled to disk), in bytes.
    max_import_bytes: int = Field(default=8 * 1024**3, ge=1024)
    # Most terms in one weighted text query ({"a red circle": 1.0, "on the left": -0.3}).
    max_query_terms: int = Field(default=16, ge=1, le=1024)

    # --- query expansion (usecases/expansion.py) ------------------------------------------
    # JSON {term: expansion | [expansions]} used by `expand: true`; unset: the packaged
    # Chinese dictionary (clipsearch/data/expansions.zh.json).
    expansions_file: Path | None = None

    # --- input limits ----------------------------------------------------------------------
    # Metadata is rendered again by every read, so it is bounded when written (see
    # usecases/metadata.py; depth is capped by what a read can render).
    max_metadata_depth: int = Field(default=8, ge=1, le=64)
    max_metadata_keys: int = Field(default=256, ge=1, le=100_000)
    max_metadata_bytes: int = Field(default=16384, ge=64, le=65536)
    # JSON bodies, per route (max_request_bytes stays the limit for multipart uploads).
    max_json_bytes_search: int = Field(default=1024 * 1024, ge=1024)
    max_json_bytes_texts: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_json_bytes_ingest: int = Field(default=16 * 1024 * 1024, ge=1024)

    # --- ingest jobs ---------------------------------------------------------------------
    ingest_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    ingest_extensions: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"]
    )
    fetch_allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    fetch_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    fetch_timeout_s: float = Field(default=15.0, gt=0)
    fetch_max_redirects: int = Field(default=3, ge=0, le=10)
    fetch_concurrency: int = Field(default=8, ge=1, le=256)
    ingest_decode_workers: int = Field(default=0, ge=0, le=256)
    ingest_upsert_batch_size: int = Field(default=256, ge=1, le=16384)
    ingest_queue_items: int = Field(default=128, ge=1, le=100_000)
    ingest_max_pending_items: int = Field(default=200_000, ge=1)
    ingest_max_items_per_job: int = Field(default=100_000, ge=1)
    # How long a job waits out an encoder outage before failing the items (0 = not at all).
    ingest_encoder_wait_s: float = Field(default=600.0, ge=0)

    # --- access ------------------------------------------------------------------------
    # Keys as salted-hash entries (scope:name:scrypt:salt:hash, see core/keys.py), inline
    # (comma-separated) and/or in a file, one per line. No keys: loopback only, unless off.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_keys_file: Path | None = None
    auth: Annotated[str, Field(pattern=r"^(auto|off)$")] = "auto"
    # The key the CLI and the client send (client side; the server never reads it).
    api_key: SecretStr = SecretStr("")
    metrics_open: bool = False  # /metrics without a key
    docs_open: bool = True  # /docs, /redoc, /openapi.json without a key
    # Host header allowlist (DNS rebinding); empty: loopback names on loopback, else "*".
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    rate_limit_per_s: float = Field(default=0.0, ge=0)  # per key / client address; 0 = off
    rate_limit_burst: int = Field(default=50, ge=1)
    # Any write may create a missing collection (else only the default one; PUT creates).
    auto_create_collections: bool = False
    # How long a migrated collection's old Milvus pair is kept after the switch (seconds).
    migration_grace_s: float = Field(default=300.0, ge=0)

    @field_validator("api_keys", "allowed_hosts", mode="before")
    @classmethod
    def _split_access_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("api_keys_file", mode="before")
    @classmethod
    def _empty_keys_file_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_cors(self) -> Settings:
        # Browsers refuse `*` with credentials anyway; a config asking for it is a mistake
        # that would otherwise be "fixed" by reflecting any origin.
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError(
                "CLIPSEARCH_CORS_ORIGINS=* with CLIPSEARCH_CORS_ALLOW_CREDENTIALS=true is "
                "refused: list the origins that may send credentials"
            )
        return self

    @property
    def binds_loopback(self) -> bool:
        """Whether ``host`` is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    @property
    def resolved_allowed_hosts(self) -> list[str]:
        if self.allowed_hosts:
            return self.allowed_hosts
        return ["127.0.0.1", "localhost", "::1"] if self.binds_loopback else ["*"]

    # --- end of access -------------------------------------------------------------------

    # --- resources (issue 11: what stays bounded under load; see RELIABILITY.md) ---------
    # Jobs run at once (each its own pipeline; they share the encoder and the store).
    ingest_concurrent_jobs: int = Field(default=2, ge=1, le=64)
    # Longest wait for one item's bytes (file, upload, FIFO...); 0 = no limit.
    ingest_read_timeout_s: float = Field(default=30.0, ge=0)
    # Longest a job may run before its unfinished items fail (0 = no limit).
    ingest_job_timeout_s: float = Field(default=0.0, ge=0)
    # Connections one job opens to one host at once (fetch timeouts start once connected).
    fetch_per_host_connections: int = Field(default=4, ge=1, le=256)
    # Longest a Milvus server read (search, query) may take, so an outage is a quick 503.
    milvus_read_timeout_s: float = Field(default=10.0, gt=0)
    # Decoded pixels in flight across the process, in megapixels (a bigger picture runs alone).
    decode_budget_mpx: float = Field(default=64.0, gt=0)
    # Bytes the upload spool (multipart ingest) may hold; over it: 507 + Retry-After.
    spool_max_bytes: int = Field(default=2 * 1024**3, ge=1024)
    # Finished jobs (and their items) are deleted this long after they end (0 = kept).
    job_retention_s: float = Field(default=7 * 86400.0, ge=0)
    # Requests in flight per class; past it: 503 + Retry-After at once (0 = no cap).
    max_inflight_search: int = Field(default=32, ge=0)
    max_inflight_write: int = Field(default=16, ge=0)
    max_inflight_ingest: int = Field(default=8, ge=0)
    # Open /v1/jobs/{id}/events streams, and the longest one lives (seconds).
    max_event_streams: int = Field(default=32, ge=1)
    event_stream_max_s: float = Field(default=3600.0, gt=0)
    # uvicorn: idle keep-alive, the deadline of a request head (slow clients), and the
    # most connections at once (0 = no cap).
    http_keep_alive_s: int = Field(default=5, ge=1)
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    http_max_connections: int = Field(default=0, ge=0)

    # --- search tools: similarity, search log ------------------------------------------
    # Most texts one POST /v1/similarity scores against its image.
    max_similarity_texts: int = Field(default=64, ge=1, le=4096)
    # One JSON line per search into this file (empty = off), rotated at max_bytes with
    # that many old files kept.
    search_log: Path | None = None
    search_log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    search_log_backups: int = Field(default=5, ge=0, le=1000)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator(
        "ingest_roots", "ingest_extensions", "fetch_allow_networks", "extra_models", mode="before"
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _check_expansions_file(self) -> Settings:
        if self.expansions_file is not None and not self.expansions_file.is_file():
            raise ValueError(f"CLIPSEARCH_EXPANSIONS_FILE={self.expansions_file} is not a file")
        return self

    @field_validator(
        "model_path", "model_cache_dir", "search_log", "expansions_file", mode="before"
    )
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_model_path(self) -> Settings:
        if self.model_path is not None and not self.model_path.is_dir():
            raise ValueError(
                f"CLIPSEARCH_MODEL_PATH={self.model_path} is not a directory "
                "(it must hold textual.onnx and visual.onnx)"
            )
        return self

    # --- derived -------------------------------------------------------------------------
    @property
    def resolved_milvus_uri(self) -> str:
        """The Milvus URI; empty means a Milvus Lite file in the data dir."""
        return self.milvus_uri or str(self.data_dir / "milvus.db")

    @property
    def store_kind(self) -> str:
        uri = self.resolved_milvus_uri
        if uri.startswith(("http://", "https://", "tcp://")):
            return "standalone"
        if self.embedded_store is EmbeddedStore.auto:
            lite_data = (self.data_dir / "milvus.db").exists()
            return "lite" if lite_data and not self.faiss_store_path.exists() else "faiss"
        return str(self.embedded_store.value)

    @property
    def store_location(self) -> str:
        """Where the store keeps its data: the faiss store's SQLite file, or the Milvus URI."""
        if self.store_kind == "faiss":
            return str(self.faiss_store_path)
        return self.resolved_milvus_uri

    @property
    def faiss_store_path(self) -> Path:
        """The faiss store's SQLite file (whichever store is in use)."""
        return self.data_dir / "store.sqlite3"

    @property
    def resolved_model_cache_dir(self) -> Path:
        return self.model_cache_dir or (self.data_dir / "models")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()
