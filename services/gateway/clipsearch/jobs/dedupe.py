"""Copies of one picture inside one job.

The first copy of a content id goes through the pipeline (it is *in flight*); later copies
wait for it instead of being marked ``duplicate`` at once, because the first copy may still
fail (a blob or vector write error). When it is stored, or found already stored, the copies
become ``duplicate``; when it fails, the copies are handed back to the reader to be read
and tried again, the first of them becoming the new copy in flight. A waiting copy keeps no
bytes (a job of 10 000 copies of one big file must not hold them all): it is re-read if it
has to be tried.

A crash while copies wait leaves them ``pending`` in the job store; the resumed job reads
them again and finds their id in the vector store (``duplicate``) or tries them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from clipsearch.jobs.store import Item, ItemStatus


@dataclass(slots=True)
class _Flight:
    seq: int  # the item whose copy is in the pipeline
    waiters: list[Item] = field(default_factory=list)


class InJobDuplicates:
    """Bookkeeping only; the pipeline reports every final item to :meth:`settle`."""

    def __init__(self) -> None:
        self.known: set[str] = set()  # ids stored by, or already in the store before, this job
        self._flying: dict[str, _Flight] = {}
        self._redo: list[Item] = []
        # Set whenever a flight ends, so a reader waiting on copies wakes up.
        self.changed = asyncio.Event()

    def classify(self, item: Item, image_id: str) -> str:
        """``"new"`` (send it down the pipeline), ``"duplicate"`` (final now) or ``"wait"``."""
        if image_id in self.known:
            return "duplicate"
        flight = self._flying.get(image_id)
        if flight is not None:
            flight.waiters.append(item)
            return "wait"
        self._flying[image_id] = _Flight(item.seq)
        return "new"

    def settle(self, seq: int, status: ItemStatus, image_id: str | None) -> list[Item]:
        """Item ``seq`` is final; returns the waiting copies that are now duplicates."""
        flight = self._flying.get(image_id) if image_id else None
        if flight is None or flight.seq != seq or image_id is None:
            return []
        del self._flying[image_id]
        self.changed.set()
        if status in ("stored", "updated", "duplicate"):
            self.known.add(image_id)
            return flight.waiters
        self._redo.extend(flight.waiters)  # the first copy failed: each copy gets its try
        return []

    def take_redo(self) -> list[Item]:
        """The copies to read and classify again (their first copy failed)."""
        out, self._redo = self._redo, []
        return out

    def waiting(self) -> bool:
        """True while some copy still depends on a copy in flight, or awaits a retry."""
        return bool(self._redo) or any(f.waiters for f in self._flying.values())
