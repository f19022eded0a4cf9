"""Builds the adapters named by the settings (see :mod:`clipsearch.bootstrap`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from clipsearch.core.config import EncoderMode, Settings
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import VectorStore

if TYPE_CHECKING:
    from clipsearch.encoder.registry import ModelRegistry
    from clipsearch.usecases.blobs import Blobs
    from clipsearch.usecases.search_log import SearchLog


def build_encoder(settings: Settings) -> Encoder:
    """The encoder for ``settings.encoder_mode``: in-process ONNX or clip-server over HTTP."""
    if settings.encoder_mode is EncoderMode.service:
        from clipsearch.encoder.service import ServiceEncoder

        return ServiceEncoder.from_settings(settings)
    from clipsearch.encoder.local import LocalEncoder

    return LocalEncoder.from_settings(settings)


def build_store(settings: Settings) -> VectorStore:
    """A Milvus server when ``CLIPSEARCH_MILVUS_URI`` names one; else the embedded store
    ``CLIPSEARCH_EMBEDDED_STORE`` names: a Milvus Lite file or SQLite + faiss."""
    if settings.store_kind == "faiss":
        from clipsearch.store.faiss_store import FaissStore

        return FaissStore.from_settings(settings)
    from clipsearch.store.milvus import MilvusStore

    return MilvusStore.from_settings(settings)


def build_blobs(settings: Settings) -> Blobs:
    """Originals and thumbnails as files under ``settings.data_dir``."""
    from clipsearch.store.blobs import FileBlobStore
    from clipsearch.usecases.blobs import BlobAdapter

    return BlobAdapter(FileBlobStore(settings.data_dir))


def build_models(
    settings: Settings, main: Encoder, wrap: Callable[[Encoder], Encoder] | None = None
) -> ModelRegistry:
    """The main encoder plus the ``CLIPSEARCH_EXTRA_MODELS`` folders, as local ONNX
    encoders built on first use (see :mod:`clipsearch.encoder.registry`)."""
    from clipsearch.encoder.registry import ExtraModel, ModelRegistry

    def build(spec: ExtraModel) -> Encoder:
        from clipsearch.encoder.local import LocalEncoder
        from clipsearch.encoder.model_files import ModelFiles

        files = ModelFiles(spec.path)
        if not files.complete():
            raise ValueError(f"{spec.path} does not hold textual.onnx and visual.onnx")
        enc = LocalEncoder(
            files,
            model_name=spec.name or spec.path.name,
            batch_size=settings.encoder_batch_size,
            threads=settings.encoder_threads,
            max_pixels=settings.max_pixels,
        )
        if spec.name:
            enc.model_name = spec.name
        return wrap(enc) if wrap is not None else enc

    return ModelRegistry(main, [ExtraModel.parse(e) for e in settings.extra_models], build)


def build_search_log(settings: Settings) -> SearchLog:
    """The search log: a rotating JSON-lines file at ``settings.search_log``, or none."""
    from clipsearch.usecases.search_log import NO_SEARCH_LOG

    if settings.search_log is None:
        return NO_SEARCH_LOG
    from clipsearch.store.search_log import RotatingSearchLog

    return RotatingSearchLog(
        settings.search_log,
        max_bytes=settings.search_log_max_bytes,
        backups=settings.search_log_backups,
    )
