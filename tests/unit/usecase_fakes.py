"""In-memory fakes of the encoder, vector store and blob store, for use-case logic tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from tests.helpers import noise

from clipsearch.store import milvus_schema as ms
from clipsearch.store.faiss_store import FaissStore
from clipsearch.store.protocol import Hit, StoreError, Target

DIM = 8


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


class FakeStore(FaissStore):
    """The production embedded store (:class:`~clipsearch.store.faiss_store.FaissStore`)
    on an in-memory SQLite database, FLAT (exact), with what the use-case tests inspect:
    the rows as dicts (``data``, ``shadow_data``), the group metas (``groups``), an
    injected write failure (``fail_upsert_ids``) and what was searched and flushed.
    ``tests/store`` runs its contract suite on this class too."""

    kind = "fake"

    def __init__(self) -> None:
        super().__init__(Path(":memory:"), index_type="FLAT")
        self.fail_upsert_ids: set[str] = set()
        self.search_calls: list[int] = []
        self.flushed: list[str] = []

    @property
    def groups(self) -> dict[str, ms.GroupMeta]:
        return self._groups

    @property
    def data(self) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        """The live pairs' rows by (group, target) and id, each with its ``vector``."""
        return self._rows_of(shadow=False)

    @property
    def shadow_data(self) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        return self._rows_of(shadow=True)

    def _rows_of(self, *, shadow: bool) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for group, meta in self._groups.items():
            if shadow and meta.shadow is None:
                continue
            for target in ("images", "texts"):
                c = self._coll(group, target, shadow=shadow)
                rows = self._full(c, list(c.rows.values()), True)
                out[(group, target)] = {r["id"]: r for r in rows}
        return out

    def _upsert(
        self, group: str, target: Target, pair: ms.GroupMeta, rows: list[dict[str, Any]]
    ) -> None:
        # Checked whole before anything is written: a refused batch leaves no row behind.
        if any(r["id"] in self.fail_upsert_ids for r in rows):
            raise StoreError("injected failure")
        super()._upsert(group, target, pair, rows)

    def search(
        self,
        group: str,
        target: Target,
        vectors: npt.NDArray[np.float32],
        **options: Any,
    ) -> list[list[Hit]]:
        hits = super().search(group, target, vectors, **options)
        self.search_calls.append(len(hits))
        return hits

    def flush(self, group: str) -> None:
        super().flush(group)
        self.flushed.append(group)


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
