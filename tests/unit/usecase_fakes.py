"""In-memory fakes of the encoder, vector store and blob store, for use-case logic tests."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from PIL import Image

from clipsearch.store.protocol import (
    GroupInfo,
    GroupMismatch,
    Hit,
    ImageRecord,
    StoreError,
    TextRecord,
    UnknownGroup,
)

DIM = 8


def picture(seed: int, size: tuple[int, int] = (16, 12)) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


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
    kind = "fake"

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.data: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.fail_upsert_ids: set[str] = set()
        self.search_calls: list[int] = []
        self.flushed: list[str] = []

    def health(self) -> None:
        return None

    def list_groups(self) -> list[str]:
        return sorted(self.groups)

    def ensure_group(self, group: str, *, dim: int, model_name: str, fingerprint: str) -> None:
        meta = self.groups.get(group)
        if meta is None:
            self.groups[group] = {"dim": dim, "model_name": model_name, "fingerprint": fingerprint}
            self.data[(group, "images")] = {}
            self.data[(group, "texts")] = {}
        elif meta["fingerprint"] != fingerprint or meta["dim"] != dim:
            raise GroupMismatch(f"{group} differs")

    def group_info(self, group: str) -> GroupInfo:
        if group not in self.groups:
            raise UnknownGroup(group)
        m = self.groups[group]
        return GroupInfo(
            group,
            m["dim"],
            m["model_name"],
            m["fingerprint"],
            "FLAT",
            {},
            {t: len(self.data[(group, t)]) for t in ("images", "texts")},
        )

    def _rows(self, group: str, target: str) -> dict[str, dict[str, Any]]:
        if group not in self.groups:
            raise UnknownGroup(group)
        return self.data[(group, target)]

    def _upsert(self, group: str, target: str, records: Sequence[Any]) -> None:
        if any(r.id in self.fail_upsert_ids for r in records):
            raise StoreError("injected failure")
        for r in records:
            self._rows(group, target)[r.id] = asdict(r)

    def upsert_images(self, group: str, records: Sequence[ImageRecord]) -> None:
        self._upsert(group, "images", records)

    def upsert_texts(self, group: str, records: Sequence[TextRecord]) -> None:
        self._upsert(group, "texts", records)

    def existing_ids(self, group: str, target: str, ids: Sequence[str]) -> set[str]:
        return set(ids) & set(self._rows(group, target))

    def get(
        self, group: str, target: str, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[dict[str, Any]]:
        rows = self._rows(group, target)
        out = []
        for i in ids:
            if i in rows:
                row = dict(rows[i])
                if not with_vectors:
                    row.pop("vector")
                out.append(row)
        return out

    def count(self, group: str, target: str) -> int:
        return len(self._rows(group, target))

    def search(
        self,
        group: str,
        target: str,
        vectors: np.ndarray,
        *,
        top_k: int,
        offset: int = 0,
        filter: Any = None,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        self.search_calls.append(len(vectors))
        rows = list(self._rows(group, target).values())
        out = []
        for q in vectors:
            scored = sorted(
                ((float(np.dot(q, r["vector"])), r) for r in rows), key=lambda x: -x[0]
            )[offset : offset + top_k]
            out.append(
                [
                    Hit(r["id"], s, {k: v for k, v in r.items() if k not in ("id", "vector")})
                    for s, r in scored
                    if min_score is None or s >= min_score
                ]
            )
        return out

    def delete(self, group: str, target: str, ids: Sequence[str]) -> int:
        rows = self._rows(group, target)
        return sum(rows.pop(i, None) is not None for i in ids)

    def delete_texts_of_image(self, group: str, image_id: str) -> int:
        rows = self._rows(group, "texts")
        gone = [k for k, r in rows.items() if r["image_id"] == image_id]
        return self.delete(group, "texts", gone)

    def drop_group(self, group: str) -> bool:
        return self.groups.pop(group, None) is not None

    def flush(self, group: str) -> None:
        self.flushed.append(group)

    def close(self) -> None:
        return None


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
