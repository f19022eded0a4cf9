"""Migration pairs and the ``auto`` threshold of :class:`~clipsearch.store.faiss_store.
FaissStore` (mixed in): each change is one meta row written in a transaction, then applied
to memory, with the group functions the Milvus store uses (:mod:`.milvus_groups`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from clipsearch.store import milvus_groups as mg
from clipsearch.store import milvus_schema as ms
from clipsearch.store.faiss_records import RecordsFile
from clipsearch.store.protocol import GroupMismatch, IndexSpec, InvalidStoreRequest


class PairChanges:
    """The shadow pair of a migration (begin, switch, drop), retired pairs, thresholds."""

    prefix: str
    _lock: threading.RLock
    _file: RecordsFile
    _groups: dict[str, ms.GroupMeta]
    _hnsw_defaults: dict[str, Any]

    def _meta(self, group: str) -> ms.GroupMeta:
        raise NotImplementedError

    def _add_pair(self, group: str, pair: ms.GroupMeta) -> None:
        raise NotImplementedError

    def _drop(self, db: RecordsFile, names: Sequence[str]) -> None:
        raise NotImplementedError

    def begin_shadow(
        self, group: str, *, dim: int, model_name: str, fingerprint: str, index: IndexSpec
    ) -> None:
        spec = mg.check_index(index, self._hnsw_defaults)
        with self._lock:
            meta = self._meta(group)
            if meta.shadow is not None:
                if meta.shadow.fingerprint != fingerprint or meta.shadow.dim != dim:
                    raise GroupMismatch(f"{group!r} is already being migrated")
                return
            pair = mg.new_meta(dim, model_name, fingerprint, spec, meta.generation + 1)
            new = replace(meta, shadow=pair)
            with self._file.tx() as db:
                db.write_meta(group, new)
            self._groups[group] = new
            self._add_pair(group, pair)

    def switch_shadow(self, group: str) -> None:
        with self._lock:
            meta = self._meta(group)
            if meta.shadow is None:
                raise InvalidStoreRequest(f"{group!r} has no migration under way")
            new = mg.switched(meta, self.prefix, group)
            with self._file.tx() as db:
                db.write_meta(group, new)
            self._groups[group] = new

    def drop_shadow(self, group: str) -> None:
        with self._lock:
            meta = self._meta(group)
            if meta.shadow is None:
                return
            names = list(mg.pair_names(self.prefix, group, meta.shadow.generation).values())
            new = replace(meta, shadow=None)
            with self._file.tx() as db:
                self._drop(db, names)
                db.write_meta(group, new)
            self._groups[group] = new

    def drop_retired(self, group: str) -> int:
        with self._lock:
            meta = self._meta(group)
            new = replace(meta, retired=())
            with self._file.tx() as db:
                self._drop(db, meta.retired)
                db.write_meta(group, new)
            self._groups[group] = new
            return len(meta.retired)

    def set_threshold(
        self, group: str, value: float | None, *, fingerprint: str | None = None
    ) -> None:
        with self._lock:
            meta = self._meta(group)
            mg.check_model(meta, group, fingerprint)
            new = mg.with_threshold(meta, value)
            with self._file.tx() as db:
                db.write_meta(group, new)
            self._groups[group] = new
