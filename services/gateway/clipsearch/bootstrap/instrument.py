"""Adapters wrapped with timing: encoder batch sizes/latency and store call latency.

The wrappers implement the same Protocols, so the use-cases never know they are measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from clipsearch.core.metrics import Metrics
from clipsearch.encoder.protocol import Encoder, PixelEncoder, PixelTensor, Vectors, pixel_path
from clipsearch.store.protocol import (
    Filter,
    GroupInfo,
    Hit,
    ImageRecord,
    IndexSpec,
    ScanPage,
    Target,
    TextRecord,
    VectorStore,
)

T = TypeVar("T")


class InstrumentedEncoder:
    """An :class:`Encoder` that records each call's batch size and latency, by kind and
    outcome, in the app's :class:`Metrics`."""

    def __init__(self, inner: Encoder, metrics: Metrics) -> None:
        self.inner = inner
        self._m = metrics
        self.mode = inner.mode
        self.model_name = inner.model_name
        # The local encoder's runtime (fp32, int8, openvino); not part of the Encoder protocol.
        self.runtime: str | None = getattr(inner, "runtime", None)

    @property
    def precision(self) -> str | None:
        """The inner encoder's precision (known once its model is loaded), if it has one."""
        value = getattr(self.inner, "precision", None)
        return value if isinstance(value, str) else None

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    async def encode_texts(self, texts: Sequence[str]) -> Vectors:
        self._m.encoder_batch.labels("text").observe(len(texts))
        started, outcome = time.perf_counter(), "error"
        try:
            out = await self.inner.encode_texts(texts)
            outcome = "ok"
            return out
        finally:
            self._m.encoder_seconds.labels("text", outcome).observe(time.perf_counter() - started)

    async def encode_images(self, images: Sequence[bytes]) -> Vectors:
        self._m.encoder_batch.labels("image").observe(len(images))
        started, outcome = time.perf_counter(), "error"
        try:
            out = await self.inner.encode_images(images)
            outcome = "ok"
            return out
        finally:
            self._m.encoder_seconds.labels("image", outcome).observe(time.perf_counter() - started)

    def pixel_encoder(self) -> InstrumentedPixels | None:
        """The inner encoder's sync pixel path (local mode), measured like the async
        calls; None when the inner encoder has none (service mode)."""
        inner = pixel_path(self.inner)
        return None if inner is None else InstrumentedPixels(inner, self._m)

    async def health(self) -> None:
        await self.inner.health()

    async def close(self) -> None:
        await self.inner.close()


class InstrumentedPixels:
    """``encode_pixels`` (already preprocessed batches, used by ingest jobs) with the same
    ``image`` batch-size and latency metrics as :meth:`InstrumentedEncoder.encode_images`."""

    def __init__(self, inner: PixelEncoder, metrics: Metrics) -> None:
        self.inner = inner
        self._m = metrics

    def input_size(self) -> int:
        return self.inner.input_size()

    def preprocess(self, image: Image.Image) -> PixelTensor:
        return self.inner.preprocess(image)

    def encode_pixels(self, pixels: npt.NDArray[np.float32]) -> Vectors:
        self._m.encoder_batch.labels("image").observe(len(pixels))
        started, outcome = time.perf_counter(), "error"
        try:
            out = self.inner.encode_pixels(pixels)
            outcome = "ok"
            return out
        finally:
            self._m.encoder_seconds.labels("image", outcome).observe(time.perf_counter() - started)


class InstrumentedStore:
    """A :class:`VectorStore` that records each call's latency, by operation and outcome."""

    def __init__(self, inner: VectorStore, metrics: Metrics) -> None:
        self.inner = inner
        self._m = metrics
        self.kind = inner.kind

    @contextmanager
    def _timed(self, op: str) -> Iterator[None]:
        started, outcome = time.perf_counter(), "error"
        try:
            yield
            outcome = "ok"
        finally:
            self._m.store_seconds.labels(op, outcome).observe(time.perf_counter() - started)

    def _call(self, op: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._timed(op):
            return fn(*args, **kwargs)

    def health(self) -> None:
        self._call("health", self.inner.health)

    def list_groups(self) -> list[str]:
        return self._call("list_groups", self.inner.list_groups)

    def ensure_group(
        self,
        group: str,
        *,
        dim: int,
        model_name: str,
        fingerprint: str,
        index: IndexSpec | None = None,
    ) -> None:
        self._call(
            "ensure_group",
            self.inner.ensure_group,
            group,
            dim=dim,
            model_name=model_name,
            fingerprint=fingerprint,
            index=index,
        )

    def group_info(self, group: str, *, with_counts: bool = True) -> GroupInfo:
        return self._call("group_info", self.inner.group_info, group, with_counts=with_counts)

    def upsert_images(
        self, group: str, records: Sequence[ImageRecord], *, fingerprint: str | None = None
    ) -> None:
        self._call(
            "upsert_images", self.inner.upsert_images, group, records, fingerprint=fingerprint
        )

    def upsert_texts(
        self, group: str, records: Sequence[TextRecord], *, fingerprint: str | None = None
    ) -> None:
        self._call("upsert_texts", self.inner.upsert_texts, group, records, fingerprint=fingerprint)

    def begin_shadow(
        self, group: str, *, dim: int, model_name: str, fingerprint: str, index: IndexSpec
    ) -> None:
        self._call(
            "begin_shadow",
            self.inner.begin_shadow,
            group,
            dim=dim,
            model_name=model_name,
            fingerprint=fingerprint,
            index=index,
        )

    def switch_shadow(self, group: str) -> None:
        self._call("switch_shadow", self.inner.switch_shadow, group)

    def drop_shadow(self, group: str) -> None:
        self._call("drop_shadow", self.inner.drop_shadow, group)

    def drop_retired(self, group: str) -> int:
        return self._call("drop_retired", self.inner.drop_retired, group)

    def scan_ids(self, group: str, target: Target, *, shadow: bool = False) -> list[str]:
        return self._call("scan_ids", self.inner.scan_ids, group, target, shadow=shadow)

    def existing_ids(self, group: str, target: Target, ids: Sequence[str]) -> set[str]:
        return self._call("existing_ids", self.inner.existing_ids, group, target, ids)

    def get(
        self, group: str, target: Target, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[dict[str, Any]]:
        return self._call("get", self.inner.get, group, target, ids, with_vectors=with_vectors)

    def count(self, group: str, target: Target) -> int:
        return self._call("count", self.inner.count, group, target)

    def scan(
        self,
        group: str,
        target: Target,
        *,
        after: str = "",
        limit: int = 1000,
        filter: Filter | None = None,
        with_vectors: bool = False,
    ) -> ScanPage:
        return self._call(
            "scan",
            self.inner.scan,
            group,
            target,
            after=after,
            limit=limit,
            filter=filter,
            with_vectors=with_vectors,
        )

    def texts_of_images(self, group: str, image_ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._call("texts_of_images", self.inner.texts_of_images, group, image_ids)

    def search(
        self,
        group: str,
        target: Target,
        vectors: npt.NDArray[np.float32],
        *,
        top_k: int,
        offset: int = 0,
        filter: Filter | None = None,
        min_score: float | None = None,
        fingerprint: str | None = None,
    ) -> list[list[Hit]]:
        return self._call(
            "search",
            self.inner.search,
            group,
            target,
            vectors,
            top_k=top_k,
            offset=offset,
            filter=filter,
            min_score=min_score,
            fingerprint=fingerprint,
        )

    def delete(self, group: str, target: Target, ids: Sequence[str]) -> int:
        return self._call("delete", self.inner.delete, group, target, ids)

    def text_ids_of_image(self, group: str, image_id: str) -> list[str]:
        return self._call("text_ids_of_image", self.inner.text_ids_of_image, group, image_id)

    def delete_texts_of_image(self, group: str, image_id: str) -> int:
        return self._call(
            "delete_texts_of_image", self.inner.delete_texts_of_image, group, image_id
        )

    def set_threshold(
        self, group: str, value: float | None, *, fingerprint: str | None = None
    ) -> None:
        self._call("set_threshold", self.inner.set_threshold, group, value, fingerprint=fingerprint)

    def drop_group(self, group: str) -> bool:
        return self._call("drop_group", self.inner.drop_group, group)

    def flush(self, group: str) -> None:
        self._call("flush", self.inner.flush, group)

    def close(self) -> None:
        self.inner.close()
