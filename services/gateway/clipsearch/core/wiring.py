"""Builds the adapters named by the settings. Imports are lazy so the CLI stays light."""

from __future__ import annotations

from clipsearch.core.config import EncoderMode, Settings
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import VectorStore


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
