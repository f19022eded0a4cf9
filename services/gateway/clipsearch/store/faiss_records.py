"""The SQLite file of :class:`~clipsearch.store.faiss_store.FaissStore`: its records of
record, and the in-memory collections they are loaded into.

One file (``$DATA_DIR/store.sqlite3``, WAL): a JSON meta per group (the
:class:`~clipsearch.store.milvus_schema.GroupMeta` Milvus keeps), and per (collection, id)
the JSON row and the float32 vector. Each write of the store is one transaction
(:meth:`RecordsFile.tx`), committed before memory changes, so memory never holds what the
file does not and a crash loses no acknowledged write.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clipsearch.store import filter_grammar, typed_filter
from clipsearch.store import milvus_schema as ms
from clipsearch.store.protocol import Filter, StoreError
from clipsearch.store.vector_index import VectorIndex

_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    coll TEXT NOT NULL, id TEXT NOT NULL, row TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (coll, id)
) WITHOUT ROWID;
"""


class Collection:
    """One physical collection in memory: rows by id (without vectors) and their vectors.

    Readers copy what they iterate (``list(dict)`` runs without releasing the GIL), so a
    write in another thread never breaks a read."""

    def __init__(self, name: str, dim: int, index: VectorIndex) -> None:
        self.name = name
        self.dim = dim
        self.rows: dict[str, dict[str, Any]] = {}
        self.index = index
        self._sorted: list[str] | None = None

    def put(self, rows: list[dict[str, Any]], vectors: npt.NDArray[np.float32]) -> None:
        for r in rows:
            self.rows[r["id"]] = r
        self.index.upsert([r["id"] for r in rows], vectors)
        self._sorted = None

    def drop(self, ids: set[str]) -> int:
        gone = [i for i in ids if self.rows.pop(i, None) is not None]
        self.index.remove(gone)
        self._sorted = None
        return len(gone)

    def sorted_ids(self) -> list[str]:
        ids = self._sorted
        if ids is None:
            ids = self._sorted = sorted(self.rows)
        return ids

    def matching(self, filter: Filter | None) -> list[dict[str, Any]]:
        """Every row whose metadata matches ``filter`` (typed: ``true`` is not ``1``)."""
        holds = typed_filter.predicate(filter_grammar.parse(filter))
        return [r for r in list(self.rows.values()) if holds(r.get("metadata"))]

    def after(self, after: str, limit: int, filter: Filter | None) -> list[dict[str, Any]]:
        """Up to ``limit`` matching rows with ids greater than ``after``, in id order."""
        holds = typed_filter.predicate(filter_grammar.parse(filter))
        ids = self.sorted_ids()
        out: list[dict[str, Any]] = []
        for i in ids[bisect.bisect_right(ids, after) :]:
            row = self.rows.get(i)
            if row is not None and holds(row.get("metadata")):
                out.append(row)
                if len(out) == limit:
                    break
        return out

    def texts_of(self, image_ids: set[str]) -> list[dict[str, Any]]:
        return [r for r in list(self.rows.values()) if r["image_id"] in image_ids]


class RecordsFile:
    """The SQLite file: opened (and created) at construction, see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the embedded store {path}: {exc}") from exc

    def groups(self) -> list[tuple[str, ms.GroupMeta]]:
        rows = self._db.execute("SELECT name, meta FROM groups").fetchall()
        return [(name, ms.GroupMeta.from_json(json.loads(text))) for name, text in rows]

    def records(self) -> Iterator[tuple[str, dict[str, Any], npt.NDArray[np.float32]]]:
        """Every stored (collection, row, vector)."""
        for coll, text, blob in self._db.execute("SELECT coll, row, vector FROM records"):
            try:
                row = json.loads(text)
                vector = np.frombuffer(blob, dtype=np.float32)
            except (ValueError, TypeError):
                row, vector = {}, np.zeros(0, dtype=np.float32)  # the caller skips it
            yield coll, row if isinstance(row, dict) else {}, vector

    def vector(self, coll: str, id_: str) -> npt.NDArray[np.float32] | None:
        found = self._db.execute(
            "SELECT vector FROM records WHERE coll = ? AND id = ?", (coll, id_)
        ).fetchone()
        return None if found is None else np.frombuffer(found[0], dtype=np.float32)

    @contextmanager
    def tx(self) -> Iterator[RecordsFile]:
        """One transaction: everything in the block is written, or nothing."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"embedded store write failed: {exc}") from exc

    # --- writes: inside tx() -------------------------------------------------------------
    def write_meta(self, group: str, meta: ms.GroupMeta) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO groups (name, meta) VALUES (?, ?)",
            (group, json.dumps(meta.to_json())),
        )

    def delete_group(self, group: str) -> None:
        self._db.execute("DELETE FROM groups WHERE name = ?", (group,))

    def drop_collections(self, names: Sequence[str]) -> None:
        self._db.executemany("DELETE FROM records WHERE coll = ?", [(n,) for n in names])

    def put(self, coll: str, rows: list[dict[str, Any]], vectors: npt.NDArray[np.float32]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO records (coll, id, row, vector) VALUES (?, ?, ?, ?)",
            [
                (coll, r["id"], json.dumps(r), v.tobytes())
                for r, v in zip(rows, vectors, strict=True)
            ],
        )

    def delete(self, coll: str, ids: set[str]) -> None:
        self._db.executemany(
            "DELETE FROM records WHERE coll = ? AND id = ?", [(coll, i) for i in ids]
        )

    def health(self) -> None:
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"embedded store unavailable: {exc}") from exc

    def close(self) -> None:
        self._db.close()
