"""The pair lifecycle of :class:`~clipsearch.store.milvus.MilvusStore` (mixed in): creating
and dropping a group's collection pairs, and a migration's shadow pair, the switch, the
retired pair, abandoning a migration; and the one other meta-row change, the group's
``auto`` search threshold.

Kept apart so the store module stays about calls, locking and errors; the pair naming and
the meta-row changes themselves are :mod:`.milvus_groups`. Every method holds the store's
schema lock and reads the group's meta row afresh (not the cache), so two of them never
interleave and each acts on the row as it is.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import replace
from typing import Any

from clipsearch.store import milvus_expr as expr
from clipsearch.store import milvus_groups as mg
from clipsearch.store import milvus_schema as ms
from clipsearch.store.milvus_consistency import await_delete
from clipsearch.store.milvus_flush import FlushPolicy
from clipsearch.store.protocol import (
    GroupMismatch,
    IndexSpec,
    InvalidStoreRequest,
    Target,
    UnknownGroup,
)

IDS_PER_SCAN = 1000


class PairLifecycle:
    """Mixin: needs the store's lock, meta reads, calls and caches (declared below)."""

    prefix: str
    kind: str
    flush_policy: FlushPolicy
    _ddl_lock: threading.RLock
    _groups: dict[str, ms.GroupMeta]
    _reads: dict[str, Any]

    @property
    def _meta_name(self) -> str:
        raise NotImplementedError

    def _call(self, what: str, *, ddl: bool = False) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _read_meta(self, group: str) -> ms.GroupMeta | None:
        raise NotImplementedError

    def _group(self, group: str) -> ms.GroupMeta:
        raise NotImplementedError

    index_type: str
    hnsw_params: dict[str, int]
    _timeout: float

    def _ensure_meta(self) -> None:
        raise NotImplementedError

    def _names(self, group: str, meta: ms.GroupMeta) -> list[str]:
        raise NotImplementedError

    def collection(self, group: str, target: Target, *, shadow: bool = False) -> str:
        raise NotImplementedError

    def begin_shadow(
        self, group: str, *, dim: int, model_name: str, fingerprint: str, index: IndexSpec
    ) -> None:
        spec = self._index_spec(index)
        with self._ddl_lock:
            meta = self._read_meta(group)
            if meta is None:
                raise UnknownGroup(f"collection group {group!r} does not exist")
            if meta.shadow is not None:
                if meta.shadow.fingerprint != fingerprint or meta.shadow.dim != dim:
                    raise GroupMismatch(
                        f"collection group {group!r} is already being migrated to model "
                        f"{meta.shadow.model_name!r}"
                    )
                return
            pair = mg.new_meta(dim, model_name, fingerprint, spec, meta.generation + 1)
            self._create_pair(group, pair, write_meta=replace(meta, shadow=pair))
            self._groups.pop(group, None)
            self._group(group)

    def switch_shadow(self, group: str) -> None:
        with self._ddl_lock:
            meta = self._read_meta(group)
            if meta is None or meta.shadow is None:
                raise InvalidStoreRequest(f"collection group {group!r} has no migration under way")
            new = mg.switched(meta, self.prefix, group)
            names = mg.pair_names(self.prefix, group, new.generation)
            with self._call("switch group", ddl=True) as c:
                mg.write_meta(c, self._meta_name, group, new)  # the switch itself
                self._groups[group] = new
                mg.point_aliases(c, self.prefix, group, names)

    def drop_shadow(self, group: str) -> None:
        with self._ddl_lock:
            meta = self._read_meta(group)
            if meta is None or meta.shadow is None:
                return
            names = list(mg.pair_names(self.prefix, group, meta.shadow.generation).values())
            with self._call("drop shadow", ddl=True) as c:
                mg.write_meta(c, self._meta_name, group, replace(meta, shadow=None))
                self._groups.pop(group, None)
                self.flush_policy.forget(names)
                mg.drop_collections(c, names)

    def drop_retired(self, group: str) -> int:
        with self._ddl_lock:
            meta = self._read_meta(group)
            if meta is None or not meta.retired:
                return 0
            with self._call("drop retired", ddl=True) as c:
                self.flush_policy.forget(list(meta.retired))
                dropped = mg.drop_collections(c, list(meta.retired))
                mg.write_meta(c, self._meta_name, group, replace(meta, retired=()))
                self._groups.pop(group, None)
            return dropped

    def set_threshold(
        self, group: str, value: float | None, *, fingerprint: str | None = None
    ) -> None:
        """The ``auto`` threshold into the meta row (one upsert, as a switch is)."""
        with self._ddl_lock:
            meta = self._read_meta(group)
            if meta is None:
                raise UnknownGroup(f"collection group {group!r} does not exist")
            mg.check_model(meta, group, fingerprint)
            with self._call("set threshold", ddl=True) as c:
                mg.write_meta(c, self._meta_name, group, mg.with_threshold(meta, value))
                self._groups.pop(group, None)

    def scan_ids(self, group: str, target: Target, *, shadow: bool = False) -> list[str]:
        name = self.collection(group, target, shadow=shadow)
        with self._call("scan ids") as c:
            return mg.scan_ids(c, name, IDS_PER_SCAN, self._reads)

    def _index_spec(self, index: IndexSpec | None) -> IndexSpec:
        if index is None:
            params = self.hnsw_params if self.index_type == "HNSW" else {}
            index = IndexSpec(self.index_type, params)
        return mg.check_index(index, self.hnsw_params)

    def _create_pair(self, group: str, pair: ms.GroupMeta, *, write_meta: ms.GroupMeta) -> None:
        """Create ``pair``'s collections, then write the group's meta row (last: a meta row
        naming a pair means both its collections are complete)."""
        names = mg.pair_names(self.prefix, group, pair.generation)
        with self._call("create group", ddl=True) as c:
            mg.create_pair(c, names, pair, self._timeout)
            mg.write_meta(c, self._meta_name, group, write_meta)

    def drop_group(self, group: str) -> bool:
        ms.check_group(group)
        self._ensure_meta()
        with self._call("drop group", ddl=True) as c:
            meta = self._read_meta(group)
            c.delete(self._meta_name, filter=expr.ids_expr([group]))
            await_delete(self._call, self._reads, self.kind, self._meta_name, group)
            names = list(mg.pair_names(self.prefix, group, 0).values())
            if meta is not None:
                names = [*self._names(group, meta), *meta.retired, *names]
            names = list(dict.fromkeys(names))
            self.flush_policy.forget(names)
            mg.drop_aliases(c, self.prefix, group)  # an aliased collection cannot be dropped
            mg.drop_collections(c, names)
            self._groups.pop(group, None)
        return meta is not None
