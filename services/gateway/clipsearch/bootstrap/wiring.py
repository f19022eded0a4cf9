"""Builds the adapters named by the settings (see :mod:`clipsearch.bootstrap`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clipsearch.core.config import EncoderMode, Settings
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import VectorStore

if TYPE_CHECKING:
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
    """A Milvus store: Lite (a file) or a server, chosen by the URI."""
    from clipsearch.store.milvus import MilvusStore

    return MilvusStore.from_settings(settings)


def build_blobs(settings: Settings) -> Blobs:
    """Originals and thumbnails as files under ``settings.data_dir``."""
    from clipsearch.store.blobs import FileBlobStore
    from clipsearch.usecases.blobs import BlobAdapter

    return BlobAdapter(FileBlobStore(settings.data_dir))


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
