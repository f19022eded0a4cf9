"""In-memory fakes of the encoder, vector store and blob store, for use-case logic tests."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from tests.helpers import noise

from clipsearch.store import milvus_browse as browse
from clipsearch.store import milvus_expr as expr
from clipsearch.store import milvus_groups as mg
from clipsearch.store import milvus_schema as ms
from clipsearch.store import typed_filter
from clipsearch.store.protocol import (
    Filter,
    GroupInfo,
    GroupMismatch,
    Hit,
    ImageRecord,
    IndexSpec,
    InvalidStoreRequest,
    ScanPage,
    StoreError,
    Target,
    TextRecord,
    UnknownGroup,
)

DIM = 8
DEFAULT_HNSW = {"M": 16, "efConstruction": 200}


def picture(seed: int) -> bytes:
    """A 16 x 12 JPEG of noise, about 1 KB: under the small upload limits of these tests."""
    return noise(seed, (16, 12), "JPEG", quality=95)


def _vec(key: bytes) -> np.ndarray:
    raw = np.frombuffer(hashlib.sha256(key).digest()[: DIM * 4], dtype=np.uint32)
    v = raw.astype(np.float32) - 2**31
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakeEncoder:
    mode = "fake"
    model_name = "fake-model"

    def __init__(self, fingerprint: str = "fp1") -> None:
        self._fp = fingerprint
        self.calls: list[tuple[str, int]] = []

    @property
    def dim(self) -> int:
        return DIM

    @property
    def fingerprint(self) -> str:
        return self._fp

    async def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(("text", len(texts)))
        return np.stack([_vec(t.encode()) for t in texts])

    async def encode_images(self, images: Sequence[bytes]) -> np.ndarray:
        self.calls.append(("image", len(images)))
        return np.stack([_vec(b) for b in images])

    async def health(self) -> None:
        return None

    async def close(self) -> None:
        return None


class FakeStore:
    """The :class:`~clipsearch.store.protocol.VectorStore` contract in memory, exact cosine
    search. Rows, limits and filters are checked by the same functions as ``MilvusStore``
    (``milvus_schema``, ``milvus_expr``), and ``tests/store`` runs its contract suite on
    this class too, so the two cannot drift apart."""

    kind = "fake"

    def __init__(self) -> None:
        self.groups: dict[str, ms.GroupMeta] = {}
        self.data: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.shadow_data: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.fail_upsert_ids: set[str] = set()
        self.search_calls: list[int] = []
        self.flushed: list[str] = []
        self._lock = threading.Lock()

    def health(self) -> None:
        return None

    def list_groups(self) -> list[str]:
        return sorted(self.groups)

    def ensure_group(
        self,
        group: str,
        *,
        dim: int,
        model_name: str,
        fingerprint: str,
        index: IndexSpec | None = None,
    ) -> None:
        ms.check_group(group)
        if dim < 1 or dim > 32768:
            raise InvalidStoreRequest(f"invalid vector dimension {dim}")
        spec = mg.check_index(index or IndexSpec("FLAT"), DEFAULT_HNSW)
        with self._lock:
            meta = self.groups.get(group)
            if meta is None:
                self.groups[group] = mg.new_meta(dim, model_name, fingerprint, spec)
                self.data[(group, "images")] = {}
                self.data[(group, "texts")] = {}
            elif meta.fingerprint != fingerprint or meta.dim != dim:
                raise GroupMismatch(ms.mismatch_message(group, meta, model_name, fingerprint, dim))

    # --- migration: the shadow pair under the keys (group, target, "shadow") -------------
    def begin_shadow(
        self, group: str, *, dim: int, model_name: str, fingerprint: str, index: IndexSpec
    ) -> None:
        spec = mg.check_index(index, DEFAULT_HNSW)
        with self._lock:
            meta = self._meta(group)
            if meta.shadow is not None:
                if meta.shadow.fingerprint != fingerprint or meta.shadow.dim != dim:
                    raise GroupMismatch(f"{group!r} is already being migrated")
                return
            pair = mg.new_meta(dim, model_name, fingerprint, spec, meta.generation + 1)
            for t in ("images", "texts"):
                self.shadow_data[(group, t)] = {}
            self.groups[group] = replace(meta, shadow=pair)

    def switch_shadow(self, group: str) -> None:
        with self._lock:
            meta = self._meta(group)
            if meta.shadow is None:
                raise InvalidStoreRequest(f"{group!r} has no migration under way")
            self.groups[group] = mg.switched(meta, "fake", group)
            for t in ("images", "texts"):
                self.data[(group, t)] = self.shadow_data.pop((group, t))

    def drop_shadow(self, group: str) -> None:
        with self._lock:
            meta = self._meta(group)
            if meta.shadow is not None:
                self.groups[group] = replace(meta, shadow=None)
                for t in ("images", "texts"):
                    self.shadow_data.pop((group, t), None)

    def drop_retired(self, group: str) -> int:
        with self._lock:
            meta = self._meta(group)
            self.groups[group] = replace(meta, retired=())
            return len(meta.retired)

    def scan_ids(self, group: str, target: Target, *, shadow: bool = False) -> list[str]:
        self._meta(group)
        rows = self.shadow_data[(group, target)] if shadow else self.data[(group, target)]
        return sorted(rows)

    def _meta(self, group: str) -> ms.GroupMeta:
        ms.check_group(group)
        meta = self.groups.get(group)
        if meta is None:
            raise UnknownGroup(f"collection group {group!r} does not exist")
        return meta

    def group_info(self, group: str, *, with_counts: bool = True) -> GroupInfo:
        m = self._meta(group)
        counts = {t: self.count(group, t) for t in ("images", "texts")} if with_counts else {}
        return GroupInfo(
            group,
            m.dim,
            m.model_name,
            m.fingerprint,
            m.index_type,
            {**m.index_params, "metric_type": "COSINE"},
            counts,
            created_at=m.created_at,
            shadow=mg.shadow_info(m),
            retired=list(m.retired),
            min_score_auto=m.min_score_auto,
        )

    def _rows(self, group: str, target: str) -> dict[str, dict[str, Any]]:
        self._meta(group)
        return self.data[(group, target)]

    def _upsert(self, group: str, target: Target, rows: list[dict[str, Any]], shadow: bool) -> None:
        # Checked whole before anything is written: a refused batch leaves no row behind.
        if any(r["id"] in self.fail_upsert_ids for r in rows):
            raise StoreError("injected failure")
        with self._lock:
            store = self.shadow_data if shadow else self.data
            store[(group, target)].update((r["id"], r) for r in rows)

    def upsert_images(
        self, group: str, records: Sequence[ImageRecord], *, fingerprint: str | None = None
    ) -> None:
        meta = self._meta(group)
        pair = mg.pair_of(meta, group, fingerprint)
        rows = [ms.image_row(r, pair.dim)[0] for r in records]
        self._upsert(group, "images", rows, pair is not meta)

    def upsert_texts(
        self, group: str, records: Sequence[TextRecord], *, fingerprint: str | None = None
    ) -> None:
        meta = self._meta(group)
        pair = mg.pair_of(meta, group, fingerprint)
        rows = [ms.text_row(r, pair.dim)[0] for r in records]
        self._upsert(group, "texts", rows, pair is not meta)

    def existing_ids(self, group: str, target: Target, ids: Sequence[str]) -> set[str]:
        return set(ids) & set(self._rows(group, target))

    def get(
        self, group: str, target: Target, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[dict[str, Any]]:
        fields = ms.OUTPUT_FIELDS[target] + (["vector"] if with_vectors else [])
        with self._lock:
            rows = list(self._rows(group, target).values())
        return ms.rows_in_order(rows, ids, fields)

    def count(self, group: str, target: Target) -> int:
        return len(self._rows(group, target))

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
        browse.check_scan(after, limit)
        expr.metadata_filter(filter)  # refuses what Milvus would be asked to refuse
        fields = ms.OUTPUT_FIELDS[target] + (["vector"] if with_vectors else [])
        with self._lock:
            rows = sorted(
                (r for k, r in self._rows(group, target).items() if k > after),
                key=lambda r: str(r["id"]),
            )
        rows = [r for r in rows if _matches(r, filter)]
        more = len(rows) > limit
        page = browse.shape_rows(rows[:limit], fields)
        return ScanPage(page, str(page[-1]["id"]) if more else None)

    def texts_of_images(self, group: str, image_ids: Sequence[str]) -> list[dict[str, Any]]:
        wanted = set(image_ids)
        with self._lock:
            rows = [r for r in self._rows(group, "texts").values() if r["image_id"] in wanted]
        return browse.shape_rows(rows, ms.OUTPUT_FIELDS["texts"])

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
        mg.check_model(self._meta(group), group, fingerprint)
        queries = ms.check_queries(vectors, self._meta(group).dim, top_k, offset)
        expr.metadata_filter(filter)  # refuses what Milvus would be asked to refuse
        self.search_calls.append(len(queries))
        with self._lock:
            rows = [r for r in self._rows(group, target).values() if _matches(r, filter)]
        fields = [f for f in ms.OUTPUT_FIELDS[target] if f != "id"]
        out = []
        for q in queries:
            # Ties by id, as MilvusStore orders them.
            scored = sorted(
                ((_cosine(q, r["vector"]), r) for r in rows), key=lambda x: (-x[0], x[1]["id"])
            )
            page = []
            for score, r in scored[offset : offset + top_k]:
                if min_score is not None and score < min_score:
                    break  # best first: nothing further can pass
                page.append(Hit(r["id"], score, {k: r.get(k) for k in fields}))
            out.append(page)
        return out

    def delete(self, group: str, target: Target, ids: Sequence[str]) -> int:
        with self._lock:
            rows = self._rows(group, target)
            shadow = self.shadow_data.get((group, target), {})
            for i in set(ids):
                shadow.pop(i, None)
            return sum(rows.pop(i, None) is not None for i in set(ids))

    def text_ids_of_image(self, group: str, image_id: str) -> list[str]:
        with self._lock:
            rows = list(self._rows(group, "texts").items())
        return sorted(k for k, r in rows if r["image_id"] == image_id)

    def delete_texts_of_image(self, group: str, image_id: str) -> int:
        return self.delete(group, "texts", self.text_ids_of_image(group, image_id))

    def set_threshold(
        self, group: str, value: float | None, *, fingerprint: str | None = None
    ) -> None:
        with self._lock:
            meta = self._meta(group)
            mg.check_model(meta, group, fingerprint)
            self.groups[group] = mg.with_threshold(meta, value)

    def drop_group(self, group: str) -> bool:
        ms.check_group(group)
        with self._lock:
            for t in ("images", "texts"):
                self.data.pop((group, t), None)
                self.shadow_data.pop((group, t), None)
            return self.groups.pop(group, None) is not None

    def flush(self, group: str) -> None:
        self._meta(group)
        self.flushed.append(group)

    def close(self) -> None:
        return None


def _cosine(q: npt.NDArray[np.float32], v: Sequence[float]) -> float:
    w = np.asarray(v, dtype=np.float32)
    return float(np.dot(q, w) / (np.linalg.norm(q) * np.linalg.norm(w) or 1.0))


def _matches(row: dict[str, Any], filter: Filter | None) -> bool:
    """Typed matching, the store's own (``true`` is not ``1``, ``"1"`` is not ``1``)."""
    return typed_filter.matches(row.get("metadata") or {}, filter)


class FakeBlobs:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.fail = False

    def exists(self, blob_id: str) -> bool:
        return blob_id in self.blobs

    def put(
        self, blob_id: str, data: bytes, content_type: str, image: Image.Image | None = None
    ) -> None:
        if self.fail:
            raise OSError("disk full")
        self.blobs[blob_id] = data

    def read(self, blob_id: str) -> bytes:
        if blob_id not in self.blobs:
            raise FileNotFoundError(blob_id)
        return self.blobs[blob_id]

    def thumbnail(self, blob_id: str) -> bytes:
        return self.read(blob_id)[:10]

    def delete(self, blob_id: str) -> None:
        self.blobs.pop(blob_id, None)

    def total_bytes(self) -> int:
        return sum(len(b) for b in self.blobs.values())
