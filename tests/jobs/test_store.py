"""SQLite job store: records written before work, idempotency, progress, WAL on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clipsearch.jobs.store import JobStore, NewItem


def test_job_lifecycle(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    store = JobStore(db)
    items = [NewItem(source=f"f{i}.png", kind="upload", spool=f"/s/{i}") for i in range(5)]
    items.append(NewItem(source="bad", kind="url", status="failed", error="blocked"))
    job, created = store.create_job("default", items, metadata={"a": 1}, idempotency_key="k1")
    assert created
    assert job.status == "queued"
    assert job.total == 6
    assert job.counts == {"pending": 5, "stored": 0, "updated": 0, "duplicate": 0, "failed": 1}

    again, created = store.create_job("default", items[:1], idempotency_key="k1")
    assert not created
    assert again.id == job.id
    assert again.total == 6

    store.set_status(job.id, "running")
    store.mark_attempted(job.id, [(0, "id0"), (1, "id1")])
    store.finish_items(job.id, [(0, "stored", "id0", None), (2, "duplicate", "id2", None)])
    pending = store.pending_items(job.id)
    assert [p.seq for p in pending] == [1, 3, 4]
    assert pending[0].attempted
    assert pending[0].image_id == "id1"
    assert store.pending_item_count() == 3
    assert store.active_job_ids() == [job.id]
    store.close()

    # Another connection (as after a crash) sees every committed write; the file is WAL.
    reopened = JobStore(db)
    got = reopened.get_job(job.id)
    assert got is not None
    assert got.status == "running"
    assert got.started_at is not None
    assert got.counts == {"pending": 3, "stored": 1, "updated": 0, "duplicate": 1, "failed": 1}
    page = reopened.items(job.id, offset=1, limit=2)
    assert [i.public()["source"] for i in page] == ["f1.png", "f2.png"]
    assert [i.seq for i in reopened.items(job.id, status="failed")] == [5]
    reopened.set_status(job.id, "partial")
    assert reopened.active_job_ids() == []
    assert [j.id for j in reopened.list_jobs("partial")] == [job.id]
    assert reopened.list_jobs("running") == []
    reopened.close()
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
