"""Durable job and item records: SQLite in WAL mode in the data dir.

A job and all its items are written (one transaction) before any work starts, so a crash at
any later point leaves a complete list of what is still to do. Item progress is written per
batch. Before a batch is upserted to Milvus its items are marked ``attempted`` with their
content id: after a crash an attempted item whose id is in Milvus is known to be *ours*
(``stored``), while a never-attempted one whose id is there is a ``duplicate``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# "image"/"text": a record a migration job re-encodes (``source`` is its id).
ItemKind = Literal["upload", "url", "path", "image", "text"]
JobKind = Literal["ingest", "migrate"]
ItemStatus = Literal["pending", "stored", "updated", "duplicate", "failed"]
JobStatus = Literal["queued", "running", "done", "partial", "failed", "cancelled"]
ACTIVE: tuple[JobStatus, ...] = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    collection TEXT NOT NULL,
    idempotency_key TEXT UNIQUE,
    metadata TEXT NOT NULL DEFAULT '{}',
    total INTEGER NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    owner TEXT
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    seq INTEGER NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    spool TEXT,
    captions TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending',
    image_id TEXT,
    attempted INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX IF NOT EXISTS items_status ON items(job_id, status);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""


@dataclass(slots=True)
class NewItem:
    source: str
    kind: ItemKind
    spool: str | None = None
    captions: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    status: ItemStatus = "pending"  # an item known bad at submit time starts as failed
    error: str | None = None


@dataclass(slots=True)
class Item:
    job_id: str
    seq: int
    source: str
    kind: ItemKind
    spool: str | None
    captions: list[str]
    metadata: dict[str, Any]
    status: ItemStatus
    image_id: str | None
    attempted: bool
    error: str | None

    def public(self) -> dict[str, Any]:
        return {"source": self.source, "id": self.image_id, "status": self.status,
                "error": self.error}  # fmt: skip


@dataclass(slots=True)
class Job:
    id: str
    status: JobStatus
    collection: str
    idempotency_key: str | None
    metadata: dict[str, Any]
    total: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    counts: dict[str, int] = field(default_factory=dict)
    owner: str | None = None  # the name of the API key that created it (None: auth off)
    kind: JobKind = "ingest"


class JobStore:
    """Thread-safe (one connection, one lock): callers run it in worker threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a process crash (kill -9).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "owner" not in columns:  # a data dir from before API keys
            self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")
        if "kind" not in columns:  # a data dir from before migration jobs
            self._db.execute("ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'ingest'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- jobs ----------------------------------------------------------------------------
    def create_job(
        self,
        collection: str,
        items: Sequence[NewItem],
        *,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        owner: str | None = None,
        kind: JobKind = "ingest",
    ) -> tuple[Job, bool]:
        """Insert a job with its items in one transaction; returns (job, created).

        With an ``idempotency_key`` already used, the existing job is returned unchanged.
        """
        job_id = job_id or uuid.uuid4().hex
        existing: str | None = None
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if idempotency_key is not None:
                    row = self._db.execute(
                        "SELECT id FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
                    ).fetchone()
                    existing = row["id"] if row is not None else None
                if existing is None:
                    self._insert(job_id, collection, items, metadata, idempotency_key, owner)
                    self._db.execute("UPDATE jobs SET kind = ? WHERE id = ?", (kind, job_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        job = self.get_job(existing or job_id)
        assert job is not None
        return job, existing is None

    def _insert(
        self,
        job_id: str,
        collection: str,
        items: Sequence[NewItem],
        metadata: dict[str, Any] | None,
        idempotency_key: str | None,
        owner: str | None,
    ) -> None:
        self._db.execute(
            "INSERT INTO jobs (id, status, collection, idempotency_key, metadata, total,"
            " created_at, owner) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
            (job_id, collection, idempotency_key, json.dumps(metadata or {}), len(items),
             time.time(), owner),
        )  # fmt: skip
        self._db.executemany(
            "INSERT INTO items (job_id, seq, source, kind, spool, captions, metadata, status,"
            " error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (job_id, seq, it.source, it.kind, it.spool, json.dumps(it.captions),
                 json.dumps(it.metadata), it.status, it.error)
                for seq, it in enumerate(items)
            ],
        )  # fmt: skip

    def get_job(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            counts = self._counts(job_id)
        return _job(row, counts)

    def find_by_key(self, idempotency_key: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
        return self.get_job(row["id"]) if row is not None else None

    def _counts(self, job_id: str) -> dict[str, int]:
        counts = {"pending": 0, "stored": 0, "updated": 0, "duplicate": 0, "failed": 0}
        for r in self._db.execute(
            "SELECT status, count(*) AS n FROM items WHERE job_id = ? GROUP BY status", (job_id,)
        ):
            counts[r["status"]] = r["n"]
        return counts

    def list_jobs(
        self, status: str | None = None, limit: int = 100, *, owner: str | None = None
    ) -> list[Job]:
        """Newest first; only those of ``owner`` when given."""
        sql, args = "SELECT * FROM jobs WHERE 1 = 1", list[Any]()
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        if owner is not None:
            sql, args = sql + " AND owner = ?", [*args, owner]
        with self._lock:
            rows = self._db.execute(f"{sql} ORDER BY created_at DESC LIMIT ?", (*args, limit))
            return [_job(r, self._counts(r["id"])) for r in rows.fetchall()]

    def active_jobs_of(self, collection: str, kind: JobKind | None = None) -> list[str]:
        """Queued or running jobs writing to ``collection`` (of ``kind``, if given)."""
        sql = "SELECT id FROM jobs WHERE collection = ? AND status IN ('queued', 'running')"
        args: tuple[str, ...] = (collection,)
        if kind is not None:
            sql, args = sql + " AND kind = ?", (*args, kind)
        with self._lock:
            rows = self._db.execute(sql, args)
            return [str(r["id"]) for r in rows.fetchall()]

    def active_job_ids(self) -> list[str]:
        """Jobs to (re)run, oldest first: queued ones and those a crash left running."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()
        return [r["id"] for r in rows]

    def pending_item_count(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*) AS n FROM items JOIN jobs ON jobs.id = items.job_id"
                " WHERE jobs.status IN ('queued', 'running') AND items.status = 'pending'"
            ).fetchone()
        return int(row["n"])

    def set_status(self, job_id: str, status: JobStatus, error: str | None = None) -> None:
        now = time.time()
        with self._lock:
            if status == "running":
                # error = NULL: a note left by a process that died while waiting is stale.
                self._db.execute(
                    "UPDATE jobs SET status = ?, started_at = coalesce(started_at, ?),"
                    " error = NULL WHERE id = ?",
                    (status, now, job_id),
                )
            elif status in ACTIVE:
                self._db.execute("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))
            else:
                self._db.execute(
                    "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                    (status, now, error, job_id),
                )

    def set_note(self, job_id: str, note: str | None) -> None:
        """Why a running job is not progressing (e.g. waiting for the encoder), shown in its
        ``error`` field; ``None`` clears it. Final jobs are left as they are."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET error = ? WHERE id = ? AND status IN ('queued', 'running')",
                (note, job_id),
            )

    # --- items ---------------------------------------------------------------------------
    def items(
        self, job_id: str, *, status: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[Item]:
        sql = "SELECT * FROM items WHERE job_id = ?"
        args: list[Any] = [job_id]
        if status:
            sql += " AND status = ?"
            args.append(status)
        sql += " ORDER BY seq LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_item(r) for r in rows]

    def pending_items(self, job_id: str) -> list[Item]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM items WHERE job_id = ? AND status = 'pending' ORDER BY seq",
                (job_id,),
            ).fetchall()
        return [_item(r) for r in rows]

    def mark_attempted(self, job_id: str, pairs: Sequence[tuple[int, str]]) -> None:
        """(seq, image_id) pairs about to be upserted."""
        self._tx(
            "UPDATE items SET attempted = 1, image_id = ? WHERE job_id = ? AND seq = ?",
            [(image_id, job_id, seq) for seq, image_id in pairs],
        )

    def finish_items(
        self, job_id: str, results: Sequence[tuple[int, ItemStatus, str | None, str | None]]
    ) -> None:
        """(seq, status, image_id, error) for items that reached a final state."""
        self._tx(
            "UPDATE items SET status = ?, image_id = coalesce(?, image_id), error = ?"
            " WHERE job_id = ? AND seq = ?",
            [(status, image_id, error, job_id, seq) for seq, status, image_id, error in results],
        )

    def fail_pending(self, job_id: str, error: str) -> int:
        """Fail every item of ``job_id`` still pending (a job over its time limit)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE items SET status = 'failed', error = ? WHERE job_id = ? AND status = "
                "'pending'",
                (error, job_id),
            )
        return int(cur.rowcount)

    def prune_finished(self, before: float) -> int:
        """Delete the jobs that ended before ``before`` (epoch s), items first; their
        count. Active jobs are never touched, whatever their age."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                old = "SELECT id FROM jobs WHERE status NOT IN ('queued', 'running')" \
                    " AND finished_at IS NOT NULL AND finished_at < ?"  # fmt: skip
                self._db.execute(f"DELETE FROM items WHERE job_id IN ({old})", (before,))
                cur = self._db.execute(f"DELETE FROM jobs WHERE id IN ({old})", (before,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(cur.rowcount)


def _job(row: sqlite3.Row, counts: dict[str, int]) -> Job:
    return Job(
        id=row["id"],
        status=row["status"],
        collection=row["collection"],
        idempotency_key=row["idempotency_key"],
        metadata=json.loads(row["metadata"]),
        total=row["total"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        counts=counts,
        owner=row["owner"],
        kind=row["kind"],
    )


def _item(row: sqlite3.Row) -> Item:
    return Item(
        job_id=row["job_id"],
        seq=row["seq"],
        source=row["source"],
        kind=row["kind"],
        spool=row["spool"],
        captions=json.loads(row["captions"]),
        metadata=json.loads(row["metadata"]),
        status=row["status"],
        image_id=row["image_id"],
        attempted=bool(row["attempted"]),
        error=row["error"],
    )
