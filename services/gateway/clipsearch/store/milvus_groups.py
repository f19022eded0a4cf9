"""Group lifecycle for :mod:`clipsearch.store.milvus`: physical names, index specs, the
shadow pair of a migration, the switch and the aliases.

A *group* is logical; its vectors live in a *pair* of physical collections named by the
group's ``generation`` (in the group's meta row, the one source of truth for the mapping):

- generation 0 (a group never migrated): ``{prefix}_{group}_images`` / ``_texts``;
- generation n > 0: ``{prefix}_{group}_images_v{n}`` / ``_texts_v{n}``. The suffix
  ``_v{n}`` after the fixed target name keeps every pair name distinct from every other
  group's, whatever underscores group names hold.

A migration creates the next generation as the meta's ``shadow``, fills it, then
*switches*: one meta-row upsert makes the shadow the live pair (atomic on both backends).
On top of it the alias ``{prefix}_{group}_{target}_live`` is pointed at the new pair
(``alter_alias``), so an outside reader of Milvus has a stable name too; the gateway
itself always reads the meta row. Milvus Lite 3.2.2 turned out to support aliases as the
server does (``create_alias``/``alter_alias``/``describe_alias``), so there is one code
path for both.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any

from pymilvus import MilvusException

from clipsearch.store import milvus_schema as ms
from clipsearch.store.protocol import (
    GroupInfo,
    GroupMismatch,
    IndexSpec,
    InvalidStoreRequest,
    ShadowInfo,
    Target,
)

TARGETS: tuple[Target, ...] = ("images", "texts")
# What a client may set per index type; ranges as in Settings (hnsw_m, hnsw_ef_construction).
INDEX_PARAMS: dict[str, dict[str, tuple[int, int]]] = {
    "HNSW": {"M": (4, 64), "efConstruction": (8, 2048)},
    "FLAT": {},
}


def pair_names(prefix: str, group: str, generation: int) -> dict[Target, str]:
    """The physical collections of ``group``'s pair of ``generation``."""
    ms.check_group(group)
    suffix = f"_v{generation}" if generation > 0 else ""
    return {t: f"{prefix}_{group}_{t}{suffix}" for t in TARGETS}


def alias_name(prefix: str, group: str, target: Target) -> str:
    return f"{prefix}_{group}_{target}_live"


def check_index(spec: IndexSpec, defaults: dict[str, Any]) -> IndexSpec:
    """``spec`` with its type upper-cased and missing HNSW params taken from ``defaults``;
    :class:`InvalidStoreRequest` for an unknown type, parameter or out-of-range value."""
    kind = str(spec.type).upper()
    allowed = INDEX_PARAMS.get(kind)
    if allowed is None:
        raise InvalidStoreRequest(f"unsupported index type {spec.type!r}: use HNSW or FLAT")
    params = dict(spec.params or {})
    for key, value in params.items():
        if key not in allowed:
            raise InvalidStoreRequest(
                f"index parameter {key!r} is not one of {sorted(allowed)} for {kind}"
            )
        low, high = allowed[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidStoreRequest(
                f"index parameter {key} must be an integer in [{low}, {high}]"
            )
    if kind == "HNSW":
        params = {k: int(params.get(k, defaults[k])) for k in allowed}
    return IndexSpec(kind, params)


def new_meta(
    dim: int, model_name: str, fingerprint: str, index: IndexSpec, generation: int = 0
) -> ms.GroupMeta:
    return ms.GroupMeta(
        dim=dim,
        model_name=model_name,
        fingerprint=fingerprint,
        index_type=index.type,
        index_params=dict(index.params),
        created_at=int(time.time()),
        generation=generation,
    )


def create_pair(client: Any, names: dict[Target, str], meta: ms.GroupMeta, timeout: float) -> None:
    ms.create_collections(
        client, names, meta.dim, meta.index_type, dict(meta.index_params), timeout
    )


def write_meta(client: Any, meta_name: str, group: str, meta: ms.GroupMeta) -> None:
    """The group's meta row: one upsert, so a switch is atomic."""
    client.upsert(meta_name, [{"id": group, "vector": ms.META_VECTOR, "info": meta.to_json()}])


def switched(meta: ms.GroupMeta, prefix: str, group: str) -> ms.GroupMeta:
    """The meta after a switch: the shadow is live, the old pair retired. The ``auto``
    threshold stays only if the new pair has the same model: scores of another model are
    on another scale, so it needs a threshold of its own (``clipsearch evaluate``)."""
    assert meta.shadow is not None
    old = list(pair_names(prefix, group, meta.generation).values())
    same_model = meta.shadow.fingerprint == meta.fingerprint
    return replace(
        meta.shadow,
        created_at=meta.created_at,
        shadow=None,
        retired=(*meta.retired, *old),
        min_score_auto=meta.min_score_auto if same_model else meta.shadow.min_score_auto,
    )


def with_threshold(meta: ms.GroupMeta, value: float | None) -> ms.GroupMeta:
    """The meta with the live pair's ``auto`` threshold set (None: removed)."""
    if value is not None and not -1.0 <= value <= 1.0:
        raise InvalidStoreRequest(f"threshold {value!r} is not a cosine score in [-1, 1]")
    return replace(meta, min_score_auto=value)


def point_aliases(client: Any, prefix: str, group: str, names: dict[Target, str]) -> None:
    """Point the group's aliases at ``names`` (created on the first switch)."""
    for target, name in names.items():
        alias = alias_name(prefix, group, target)
        try:
            client.describe_alias(alias)
        except MilvusException:
            client.create_alias(name, alias)
        else:
            client.alter_alias(name, alias)


def drop_aliases(client: Any, prefix: str, group: str) -> None:
    for target in TARGETS:
        with contextlib.suppress(MilvusException):  # a group never migrated has none
            client.drop_alias(alias_name(prefix, group, target))


def drop_collections(client: Any, names: list[str]) -> int:
    dropped = 0
    for name in names:
        if client.has_collection(name):
            client.drop_collection(name)
            dropped += 1
    return dropped


def pair_of(meta: ms.GroupMeta, group: str, fingerprint: str | None) -> ms.GroupMeta:
    """The pair a write of vectors of model ``fingerprint`` goes to: live or shadow (None:
    live). :class:`GroupMismatch` when neither is of that model: the write was encoded for
    a pair a switch has just retired (its twin write, for the new live pair, stands)."""
    if fingerprint is None or fingerprint == meta.fingerprint:
        return meta
    if meta.shadow is not None and meta.shadow.fingerprint == fingerprint:
        return meta.shadow
    raise GroupMismatch(
        f"collection group {group!r} has no pair of the model with fingerprint {fingerprint}"
    )


def check_model(meta: ms.GroupMeta, group: str, fingerprint: str | None) -> None:
    """:class:`GroupMismatch` unless the live pair is of model ``fingerprint`` (or None)."""
    if fingerprint is not None and fingerprint != meta.fingerprint:
        raise GroupMismatch(
            f"collection group {group!r} is now of the model with fingerprint "
            f"{meta.fingerprint}, not {fingerprint}"
        )


def group_info(group: str, meta: ms.GroupMeta, counts: dict[str, int], ef_search: int) -> GroupInfo:
    """What ``group`` was built with, as every store reports it (``ef_search``: the HNSW
    search width the store uses, shown with an HNSW index's parameters)."""
    hnsw = {"ef_search": ef_search} if meta.index_type == "HNSW" else {}
    return GroupInfo(
        name=group,
        dim=meta.dim,
        model_name=meta.model_name,
        fingerprint=meta.fingerprint,
        index_type=meta.index_type,
        index_params=dict(meta.index_params, metric_type="COSINE") | hnsw,
        counts=counts,
        created_at=meta.created_at,
        shadow=shadow_info(meta),
        retired=list(meta.retired),
        min_score_auto=meta.min_score_auto,
    )


def shadow_info(meta: ms.GroupMeta) -> ShadowInfo | None:
    s = meta.shadow
    if s is None:
        return None
    return ShadowInfo(s.dim, s.model_name, s.fingerprint, s.index_type, dict(s.index_params))


def scan_ids(client: Any, name: str, batch: int, reads: dict[str, Any]) -> list[str]:
    """Every primary key of ``name`` (pymilvus' query iterator: pages by key, no cap)."""
    kwargs = {k: v for k, v in reads.items() if k == "timeout"}
    it = client.query_iterator(name, batch_size=batch, filter="", output_fields=["id"], **kwargs)
    ids: list[str] = []
    try:
        while rows := it.next():
            ids.extend(str(r["id"]) for r in rows)
    finally:
        it.close()
    return ids
