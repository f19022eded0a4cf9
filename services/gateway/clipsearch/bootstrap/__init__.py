"""Composition root: what runs in production, built from the settings.

The one place that knows the concrete adapters. Everything else depends on Protocols
(:class:`~clipsearch.encoder.protocol.Encoder`, :class:`~clipsearch.store.protocol.VectorStore`,
:class:`~clipsearch.usecases.images.Blobs`), so tests and benches inject their own.

* encoder: ``settings.encoder_mode`` ``local`` is ``encoder.local.LocalEncoder`` (ONNX
  Runtime in-process), ``service`` is ``encoder.service.ServiceEncoder`` (clip-server);
* store: ``store.milvus.MilvusStore``, Milvus Lite (a file in the data dir) or a server,
  chosen by ``settings.milvus_uri``;
* blobs: ``usecases.blobs.BlobAdapter`` over ``store.blobs.FileBlobStore`` in the data dir;
* search log: ``store.search_log.RotatingSearchLog`` when ``settings.search_log`` is set;
* measured: the app wraps encoder and store in :mod:`clipsearch.bootstrap.instrument`.

Adapter imports are lazy so the CLI (which imports this for ``evaluate`` and the benches)
does not load ONNX Runtime or pymilvus before it needs them.
"""

from __future__ import annotations

from clipsearch.bootstrap.instrument import InstrumentedEncoder, InstrumentedStore
from clipsearch.bootstrap.wiring import (
    build_blobs,
    build_encoder,
    build_models,
    build_search_log,
    build_store,
)

__all__ = [
    "InstrumentedEncoder",
    "InstrumentedStore",
    "build_blobs",
    "build_encoder",
    "build_models",
    "build_search_log",
    "build_store",
]
