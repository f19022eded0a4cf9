"""Collection schemas and row conversion for :mod:`clipsearch.store.milvus`.

Kept apart from the store so the store module is about calls, locking and errors. Field
lengths are Milvus VARCHAR byte limits; rows are checked here so an oversize field is a
client error (:class:`InvalidStoreRequest`) instead of a server rejection mid-batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient

from clipsearch.core.names import COLLECTION_RE
from clipsearch.store.protocol import (
    GroupMismatch,
    Hit,
    ImageRecord,
    InvalidStoreRequest,
    StoreError,
    Target,
    TextRecord,
)

GROUP_RE = COLLECTION_RE
META_DIM = 2  # the meta collection needs a vector field; it is never searched
META_VECTOR = [1.0] + [0.0] * (META_DIM - 1)

ID_BYTES = 64
VARCHAR_LIMITS = {
    "source": 4096,
    "content_type": 255,
    "caption": 65535,
    "text": 65535,
    "image_id": ID_BYTES,
}
METADATA_MAX_BYTES = 65536
MAX_TOPK = 16384  # Milvus: top_k + offset and nq are each capped at 16,384
# Deepest offset + top_k a search may reach (pages past MAX_TOPK: see milvus_paging).
MAX_DEPTH = 1_000_000

# Every scalar field, per target: what search/get return besides the vector.
OUTPUT_FIELDS: dict[Target, list[str]] = {
    "images": [
        "id",
        "source",
        "content_type",
        "width",
        "height",
        "caption",
        "metadata",
        "created_at",
    ],
    "texts": ["id", "text", "image_id", "metadata", "created_at"],
}


@dataclass(frozen=True, slots=True)
class GroupMeta:
    """What a group was built with; stored as JSON in the meta collection.

    ``generation`` names its physical pair (see :mod:`.milvus_groups`): 0 for a group never
    migrated. ``shadow`` is the pair a migration is filling (its own meta), ``retired`` the
    physical collections a switch replaced, dropped after the grace period.
    ``min_score_auto`` is the score a search with ``min_score: "auto"`` uses: computed for
    this pair's model (``clipsearch evaluate``), so a switch to another model drops it.
    """

    dim: int
    model_name: str
    fingerprint: str
    index_type: str
    index_params: dict[str, Any]
    created_at: int
    generation: int = 0
    shadow: GroupMeta | None = None
    retired: tuple[str, ...] = ()
    min_score_auto: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": 1,
            "dim": self.dim,
            "model_name": self.model_name,
            "fingerprint": self.fingerprint,
            "index_type": self.index_type,
            "index_params": self.index_params,
            "created_at": self.created_at,
            "generation": self.generation,
            "retired": list(self.retired),
        }
        if self.shadow is not None:
            out["shadow"] = self.shadow.to_json()
        if self.min_score_auto is not None:
            out["min_score_auto"] = self.min_score_auto
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupMeta:
        shadow = data.get("shadow")
        return cls(
            dim=int(data["dim"]),
            model_name=str(data["model_name"]),
            fingerprint=str(data["fingerprint"]),
            index_type=str(data["index_type"]),
            index_params=dict(data.get("index_params") or {}),
            created_at=int(data.get("created_at") or 0),
            generation=int(data.get("generation") or 0),
            shadow=cls.from_json(shadow) if isinstance(shadow, dict) else None,
            retired=tuple(str(n) for n in data.get("retired") or ()),
            min_score_auto=(
                float(data["min_score_auto"]) if data.get("min_score_auto") is not None else None
            ),
        )


def check_group(group: object) -> str:
    if not isinstance(group, str) or not GROUP_RE.fullmatch(group):
        raise InvalidStoreRequest(
            f"collection group name {group!r} is invalid: use 1-64 letters, digits or _"
        )
    return group


def check_new_group(group: object, dim: int) -> str:
    """A group name and vector size a store may create a group with."""
    name = check_group(group)
    if dim < 1 or dim > 32768:
        raise InvalidStoreRequest(f"invalid vector dimension {dim}")
    return name


def data_schema(target: Target, dim: int) -> Any:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    if target == "images":
        schema.add_field("source", DataType.VARCHAR, max_length=VARCHAR_LIMITS["source"])
        schema.add_field(
            "content_type", DataType.VARCHAR, max_length=VARCHAR_LIMITS["content_type"]
        )
        schema.add_field("width", DataType.INT64)
        schema.add_field("height", DataType.INT64)
        schema.add_field("caption", DataType.VARCHAR, max_length=VARCHAR_LIMITS["caption"])
    else:
        schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_LIMITS["text"])
        schema.add_field("image_id", DataType.VARCHAR, max_length=VARCHAR_LIMITS["image_id"])
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("created_at", DataType.INT64)
    return schema


def meta_schema() -> Any:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=ID_BYTES)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=META_DIM)
    schema.add_field("info", DataType.JSON)
    return schema


def index_params(index_type: str, params: dict[str, Any], field: str = "vector") -> Any:
    ip = MilvusClient.prepare_index_params()
    ip.add_index(field_name=field, index_type=index_type, metric_type="COSINE", params=params)
    return ip


def _check_str(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise InvalidStoreRequest(f"{name} must be a string")
    limit = ID_BYTES if name == "id" else VARCHAR_LIMITS[name]
    if name == "id" and not value:
        raise InvalidStoreRequest("id must not be empty")
    if len(value.encode("utf-8")) > limit:
        raise InvalidStoreRequest(f"{name} is longer than {limit} bytes")
    return value


def _check_metadata(metadata: dict[str, Any]) -> tuple[dict[str, Any], int]:
    if not isinstance(metadata, dict):
        raise InvalidStoreRequest("metadata must be a JSON object")
    try:
        encoded = json.dumps(metadata, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidStoreRequest(f"metadata is not valid JSON: {exc}") from exc
    size = len(encoded.encode("utf-8"))
    if size > METADATA_MAX_BYTES:
        raise InvalidStoreRequest(f"metadata is larger than {METADATA_MAX_BYTES} bytes")
    return metadata, size


def _vector(vector: Any, dim: int) -> list[float]:
    arr = np.asarray(vector, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise InvalidStoreRequest(f"vector has {arr.shape[0]} dimensions, the group has {dim}")
    if not np.all(np.isfinite(arr)):
        raise InvalidStoreRequest("vector has non-finite values")
    return arr.tolist()


def image_row(rec: ImageRecord, dim: int) -> tuple[dict[str, Any], int]:
    """The Milvus row for ``rec`` and its approximate wire size in bytes."""
    metadata, msize = _check_metadata(rec.metadata)
    row = {
        "id": _check_str("id", rec.id),
        "vector": _vector(rec.vector, dim),
        "source": _check_str("source", rec.source),
        "content_type": _check_str("content_type", rec.content_type),
        "width": int(rec.width),
        "height": int(rec.height),
        "caption": _check_str("caption", rec.caption),
        "metadata": metadata,
        "created_at": int(rec.created_at) or int(time.time()),
    }
    size = 4 * dim + msize + len(rec.caption) * 4 + len(rec.source) * 4 + 256
    return row, size


def text_row(rec: TextRecord, dim: int) -> tuple[dict[str, Any], int]:
    metadata, msize = _check_metadata(rec.metadata)
    row = {
        "id": _check_str("id", rec.id),
        "vector": _vector(rec.vector, dim),
        "text": _check_str("text", rec.text),
        "image_id": _check_str("image_id", rec.image_id),
        "metadata": metadata,
        "created_at": int(rec.created_at) or int(time.time()),
    }
    size = 4 * dim + msize + len(rec.text) * 4 + 256
    return row, size


def check_queries(vectors: Any, dim: int, top_k: int, offset: int) -> npt.NDArray[np.float32]:
    """Query vectors as a float32 (n, dim) matrix, with Milvus' limits checked up front."""
    queries = np.asarray(vectors, dtype=np.float32)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise InvalidStoreRequest(f"query vectors must have shape (n, {dim}), got {queries.shape}")
    if not 1 <= queries.shape[0] <= MAX_TOPK:
        raise InvalidStoreRequest(f"between 1 and {MAX_TOPK} query vectors per search")
    if not 1 <= top_k <= MAX_TOPK or offset < 0 or top_k + offset > MAX_DEPTH:
        raise InvalidStoreRequest(
            f"need 1 <= top_k <= {MAX_TOPK}, offset >= 0, top_k + offset <= {MAX_DEPTH}"
        )
    if not np.all(np.isfinite(queries)):
        raise InvalidStoreRequest("query vectors have non-finite values")
    return queries


def mismatch_message(
    group: str, meta: GroupMeta, model_name: str, fingerprint: str, dim: int
) -> str:
    return (
        f"collection group {group!r} was built with model {meta.model_name!r} "
        f"(fingerprint {meta.fingerprint}, dim {meta.dim}) but the encoder is {model_name!r} "
        f"(fingerprint {fingerprint}, dim {dim}). Vectors of different models are not "
        "comparable: use a new collection group name (?collection=<name>, or "
        "CLIPSEARCH_DEFAULT_COLLECTION), or switch back to the old model."
    )


def create_collections(
    client: Any,
    names: Mapping[Target, str],
    dim: int,
    index_type: str,
    params: dict[str, Any],
    timeout: float,
) -> None:
    """Create and load the collections of a group; reuse any that exist with ``dim``."""
    created = []
    for target, name in names.items():
        if client.has_collection(name):
            # Left by a crash before the meta row was written: reuse it only if the
            # vectors are of the same size, else refuse rather than mix models.
            fields = client.describe_collection(name)["fields"]
            have = int(next(f for f in fields if f["name"] == "vector")["params"]["dim"])
            if have != dim:
                raise GroupMismatch(
                    f"collection {name} exists with dim {have}, the encoder has dim {dim}: "
                    "use a new collection group name"
                )
            continue
        client.create_collection(name, schema=data_schema(target, dim), consistency_level="Strong")
        # sync=False: pymilvus' wait for the build calls AllocTimestamp, which Lite lacks
        # (a gRPC error traceback in the log); the collection is empty, nothing to wait for.
        client.create_index(name, index_params(index_type, dict(params)), sync=False)
        created.append(name)
    # Load all at once: on a server each load takes seconds, mostly waiting.
    for name in created:
        client.load_collection(name, _async=True)
    deadline = time.monotonic() + timeout
    while created:
        created = [n for n in created if client.get_load_state(n)["state"].name != "Loaded"]
        if created and time.monotonic() > deadline:
            raise StoreError(f"Milvus did not load {created} within {timeout}s")
        if created:
            time.sleep(0.1)


def hits_from_raw(raw: Any, fields: list[str], min_score: float | None) -> list[list[Hit]]:
    """pymilvus search results as :class:`Hit` lists, cut below ``min_score``."""
    results: list[list[Hit]] = []
    for hits in raw:
        page = []
        for h in hits:
            score = float(h["distance"])
            if min_score is not None and score < min_score:
                break  # hits come best first
            entity = h.get("entity") or {}
            page.append(
                Hit(
                    id=str(h["id"]),
                    score=score,
                    fields={k: entity.get(k) for k in fields if k != "id"},
                )
            )
        results.append(page)
    return results


def rows_in_order(
    rows: list[dict[str, Any]], ids: Sequence[str], fields: list[str]
) -> list[dict[str, Any]]:
    """The queried ``rows`` in the order of ``ids`` (each once, missing ones skipped), with
    only ``fields``; a ``vector`` field as float32."""
    found = {str(r["id"]): r for r in rows}
    out = []
    for i in dict.fromkeys(ids):  # requested order, duplicates once
        row = found.get(i)
        if row is None:
            continue
        row = {k: row[k] for k in fields}
        if "vector" in row:
            row["vector"] = np.asarray(row["vector"], dtype=np.float32)
        out.append(row)
    return out


def create_meta_collection(client: Any, name: str, timeout: float | None = None) -> None:
    """Create (if missing) and load the one-row-per-group meta collection; ``timeout``
    bounds the check and the load (a server starting up is otherwise waited for)."""
    if not client.has_collection(name, timeout=timeout):
        # Index created apart: create_collection(index_params=) would wait for its build,
        # which calls AllocTimestamp (see create_collections).
        client.create_collection(name, schema=meta_schema(), consistency_level="Strong")
        client.create_index(name, index_params("FLAT", {}), sync=False)
    client.load_collection(name, timeout=timeout)
