"""An embedded :class:`~clipsearch.store.protocol.VectorStore`: SQLite keeps the records,
faiss searches them in this process (``CLIPSEARCH_EMBEDDED_STORE=faiss``).

Why it exists: Milvus Lite 3.2.2 walks every primary key in Python on each search (~100 ms
at 100k vectors, under the GIL, whatever the client count); an in-process HNSW answers in
well under a millisecond (BENCHMARKS.md, "Embedded store").

- **Records** are rows of one SQLite file (``$DATA_DIR/store.sqlite3``,
  :mod:`.faiss_records`). A write is one transaction, committed before it is applied in
  memory, so a crash loses no acknowledged write and never leaves half a batch.
- **Reads** are served from memory, loaded once at open: rows by id
  (:mod:`.milvus_schema` shapes them exactly as ``MilvusStore`` does) and the vectors of
  each collection in a :class:`~clipsearch.store.vector_index.VectorIndex` (exact search,
  or HNSW built in a background thread past ``exact_max`` rows: after a restart searches
  are exact until the graph is rebuilt, ~1,000 rows/s on 2 cores).
- Collections, generations (migration pairs), limits and filters are the Milvus store's
  own functions (:mod:`.milvus_groups`, :mod:`.milvus_schema`, :mod:`.milvus_expr`,
  :mod:`.typed_filter`), so ``tests/store`` and ``tests/collections`` hold both to one
  contract. Filters are matched in Python over the rows (typed: ``true`` is not ``1``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from clipsearch.store import milvus_browse as browse
from clipsearch.store import milvus_expr as expr
from clipsearch.store import milvus_groups as mg
from clipsearch.store import milvus_schema as ms
from clipsearch.store.faiss_pairs import PairChanges
from clipsearch.store.faiss_records import Collection, RecordsFile
from clipsearch.store.protocol import (
    Filter,
    GroupInfo,
    GroupMismatch,
    Hit,
    ImageRecord,
    IndexSpec,
    InvalidStoreRequest,
    ScanPage,
    Target,
    TextRecord,
    UnknownGroup,
)
from clipsearch.store.vector_index import VectorIndex

if TYPE_CHECKING:
    from clipsearch.core.config import Settings

TARGETS: tuple[Target, Target] = ("images", "texts")
LOAD_BATCH = 10_000  # rows put into memory at a time when the store opens
log = logging.getLogger(__name__)


class FaissStore(PairChanges):
    """The embedded store (see the module docstring). Thread-safe: writes hold one lock;
    searches hold only their collection's index lock."""

    kind = "faiss"

    def __init__(
        self,
        path: Path,
        *,
        prefix: str = "clipsearch",
        index_type: str = "HNSW",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 200,
        hnsw_ef_search: int = 128,
        exact_max: int = 20_000,
    ) -> None:
        self.path = path
        self.prefix = prefix
        self._default_index = IndexSpec(index_type)
        self._hnsw_defaults = {"M": hnsw_m, "efConstruction": hnsw_ef_construction}
        self._ef = hnsw_ef_search
        self._exact_max = exact_max
        self._lock = threading.RLock()
        self._file = RecordsFile(path)
        self._groups: dict[str, ms.GroupMeta] = {}
        self._colls: dict[str, Collection] = {}
        self._load()

    @classmethod
    def from_settings(cls, settings: Settings) -> FaissStore:
        return cls(
            settings.faiss_store_path,
            prefix=settings.collection_prefix,
            index_type=settings.index_type.value,
            hnsw_m=settings.hnsw_m,
            hnsw_ef_construction=settings.hnsw_ef_construction,
            hnsw_ef_search=settings.hnsw_ef_search,
            exact_max=settings.faiss_exact_max,
        )

    # --- loading and plumbing ------------------------------------------------------------
    def _load(self) -> None:
        for name, meta in self._file.groups():
            self._groups[name] = meta
            for pair in (meta, meta.shadow):
                if pair is not None:
                    self._add_pair(name, pair)
        pending: dict[str, tuple[list[dict[str, Any]], list[npt.NDArray[np.float32]]]] = {}
        skipped = 0
        for coll, row, vector in self._file.records():
            c = self._colls.get(coll)
            if c is None:  # a retired pair, dropped at the end of its grace period
                continue
            if vector.shape != (c.dim,) or not isinstance(row.get("id"), str):
                skipped += 1  # a damaged record never keeps the store from opening
                continue
            rows, vectors = pending.setdefault(coll, ([], []))
            rows.append(row)
            vectors.append(vector)
            if len(rows) == LOAD_BATCH:
                c.put(rows, np.stack(vectors))
                pending.pop(coll)
        for coll, (rows, vectors) in pending.items():
            self._colls[coll].put(rows, np.stack(vectors))
        if skipped:
            log.warning("embedded store %s: %d damaged records skipped", self.path, skipped)
        for c in self._colls.values():
            c.index.prepare()  # large HNSW collections: the graph starts building now

    def _add_pair(self, group: str, pair: ms.GroupMeta) -> None:
        """Empty in-memory collections for ``pair`` (a group's live or shadow pair)."""
        hnsw = None
        if pair.index_type == "HNSW":
            hnsw = {k: pair.index_params.get(k, v) for k, v in self._hnsw_defaults.items()}
        for coll in mg.pair_names(self.prefix, group, pair.generation).values():
            index = VectorIndex(pair.dim, hnsw=hnsw, ef=self._ef, exact_max=self._exact_max)
            self._colls[coll] = Collection(coll, pair.dim, index)

    def _meta(self, group: str) -> ms.GroupMeta:
        ms.check_group(group)
        meta = self._groups.get(group)
        if meta is None:
            raise UnknownGroup(f"collection group {group!r} does not exist")
        return meta

    def _coll(self, group: str, target: Target, *, shadow: bool = False) -> Collection:
        return self._named(group, self.collection(group, target, shadow=shadow))

    def _named(self, group: str, name: str) -> Collection:
        c = self._colls.get(name)
        if c is None:  # dropped (or switched away from) by another thread meanwhile
            raise UnknownGroup(f"collection group {group!r} does not exist")
        return c

    def collection(self, group: str, target: Target, *, shadow: bool = False) -> str:
        """The physical collection now holding ``group``'s ``target``."""
        meta = self._meta(group)
        pair = meta.shadow if shadow else meta
        if pair is None:
            raise InvalidStoreRequest(f"{group!r} has no migration under way")
        return mg.pair_names(self.prefix, group, pair.generation)[target]

    def _drop(self, db: RecordsFile, names: Sequence[str]) -> None:
        db.drop_collections(names)
        for name in names:
            self._colls.pop(name, None)

    # --- groups --------------------------------------------------------------------------
    def health(self) -> None:
        self._file.health()

    def list_groups(self) -> list[str]:
        return sorted(self._groups)

    def ensure_group(
        self,
        group: str,
        *,
        dim: int,
        model_name: str,
        fingerprint: str,
        index: IndexSpec | None = None,
    ) -> None:
        ms.check_new_group(group, dim)
        spec = mg.check_index(index or self._default_index, self._hnsw_defaults)
        with self._lock:
            meta = self._groups.get(group)
            if meta is not None:
                if meta.fingerprint != fingerprint or meta.dim != dim:
                    raise GroupMismatch(
                        ms.mismatch_message(group, meta, model_name, fingerprint, dim)
                    )
                return
            meta = mg.new_meta(dim, model_name, fingerprint, spec)
            with self._file.tx() as db:
                db.write_meta(group, meta)
            self._groups[group] = meta
            self._add_pair(group, meta)

    def group_info(self, group: str, *, with_counts: bool = True) -> GroupInfo:
        meta = self._meta(group)
        counts: dict[str, int] = {t: self.count(group, t) for t in TARGETS} if with_counts else {}
        return mg.group_info(group, meta, counts, self._ef)

    def drop_group(self, group: str) -> bool:
        ms.check_group(group)
        with self._lock:
            meta = self._groups.get(group)
            if meta is None:
                return False
            names = [
                n
                for pair in (meta, meta.shadow)
                if pair is not None
                for n in mg.pair_names(self.prefix, group, pair.generation).values()
            ]
            with self._file.tx() as db:
                self._drop(db, [*names, *meta.retired])
                db.delete_group(group)
            del self._groups[group]
            return True

    # --- writes --------------------------------------------------------------------------
    def upsert_images(
        self, group: str, records: Sequence[ImageRecord], *, fingerprint: str | None = None
    ) -> None:
        pair = mg.pair_of(self._meta(group), group, fingerprint)
        self._upsert(group, "images", pair, [ms.image_row(r, pair.dim)[0] for r in records])

    def upsert_texts(
        self, group: str, records: Sequence[TextRecord], *, fingerprint: str | None = None
    ) -> None:
        pair = mg.pair_of(self._meta(group), group, fingerprint)
        self._upsert(group, "texts", pair, [ms.text_row(r, pair.dim)[0] for r in records])

    def _upsert(
        self, group: str, target: Target, pair: ms.GroupMeta, rows: list[dict[str, Any]]
    ) -> None:
        if not rows:
            return
        rows = list({r["id"]: r for r in rows}.values())  # the last of a repeated id wins
        vectors = np.asarray([r.pop("vector") for r in rows], dtype=np.float32)
        coll = mg.pair_names(self.prefix, group, pair.generation)[target]
        with self._lock:
            if coll not in self._colls:  # dropped meanwhile (a switch, a drop)
                raise GroupMismatch(f"{group!r} changed while writing; write again")
            with self._file.tx() as db:
                db.put(coll, rows, vectors)
            self._colls[coll].put(rows, vectors)

    def delete(self, group: str, target: Target, ids: Sequence[str]) -> int:
        wanted = set(ids)
        with self._lock:
            meta = self._meta(group)
            names = [self.collection(group, target)]
            if meta.shadow is not None:
                names.append(self.collection(group, target, shadow=True))
            with self._file.tx() as db:
                for name in names:
                    db.delete(name, wanted)
            removed = [self._colls[n].drop(wanted) for n in names]
            return removed[0]

    def delete_texts_of_image(self, group: str, image_id: str) -> int:
        return self.delete(group, "texts", self.text_ids_of_image(group, image_id))

    def flush(self, group: str) -> None:
        """Writes are durable when they return; this starts the HNSW graph of a collection
        grown past ``exact_max`` rows (in the background), or adds the rows written since it
        was built, so searches need no exact scoring of a tail."""
        self._meta(group)
        for target in TARGETS:
            self._coll(group, target).index.prepare()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    # --- reads ---------------------------------------------------------------------------
    def scan_ids(self, group: str, target: Target, *, shadow: bool = False) -> list[str]:
        return list(self._coll(group, target, shadow=shadow).sorted_ids())

    def existing_ids(self, group: str, target: Target, ids: Sequence[str]) -> set[str]:
        rows = self._coll(group, target).rows
        return {i for i in ids if i in rows}

    def get(
        self, group: str, target: Target, ids: Sequence[str], *, with_vectors: bool = False
    ) -> list[dict[str, Any]]:
        c = self._coll(group, target)
        fields = ms.OUTPUT_FIELDS[target] + (["vector"] if with_vectors else [])
        rows = [r for i in ids if (r := c.rows.get(i)) is not None]
        return ms.rows_in_order(self._full(c, rows, with_vectors), ids, fields)

    def _full(
        self, c: Collection, rows: list[dict[str, Any]], with_vectors: bool
    ) -> list[dict[str, Any]]:
        """``rows`` with their stored vectors (read under the write lock, so never from a
        transaction half done; a row deleted meanwhile is left out)."""
        if not with_vectors:
            return rows
        with self._lock:
            found = [(r, self._file.vector(c.name, r["id"])) for r in rows]
        return [r | {"vector": v} for r, v in found if v is not None]

    def count(self, group: str, target: Target) -> int:
        return len(self._coll(group, target).rows)

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
        c = self._coll(group, target)
        fields = ms.OUTPUT_FIELDS[target] + (["vector"] if with_vectors else [])
        out = self._full(c, c.after(after, limit + 1, filter), with_vectors)
        page = browse.shape_rows(out[:limit], fields)
        return ScanPage(page, str(page[-1]["id"]) if len(out) > limit else None)

    def texts_of_images(self, group: str, image_ids: Sequence[str]) -> list[dict[str, Any]]:
        rows = self._coll(group, "texts").texts_of(set(image_ids))
        return browse.shape_rows(rows, ms.OUTPUT_FIELDS["texts"])

    def text_ids_of_image(self, group: str, image_id: str) -> list[str]:
        return sorted(r["id"] for r in self._coll(group, "texts").texts_of({image_id}))

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
        """Nearest neighbours by cosine, best first, ties by id (see the module)."""
        meta = self._meta(group)
        mg.check_model(meta, group, fingerprint)
        queries = ms.check_queries(vectors, meta.dim, top_k, offset)
        expr.metadata_filter(filter)  # refuses what Milvus would be asked to refuse
        c = self._named(group, mg.pair_names(self.prefix, group, meta.generation)[target])
        only = {r["id"] for r in c.matching(filter)} if filter else None
        fields = [f for f in ms.OUTPUT_FIELDS[target] if f != "id"]
        out = []
        for found in c.index.search(queries, offset + top_k, only):
            page = []
            for id_, score in found[offset:]:
                if min_score is not None and score < min_score:
                    break  # best first: nothing further can pass
                row = c.rows.get(id_)
                if row is not None:
                    page.append(Hit(id_, score, {k: row.get(k) for k in fields}))
            out.append(page)
        return out

    def indexed(self, group: str, target: Target) -> bool:
        """True when searching ``target`` needs no exact scan beyond a small tail
        (``bench search`` waits for it, as it waits for Milvus' index)."""
        return self._coll(group, target).index.indexed()
