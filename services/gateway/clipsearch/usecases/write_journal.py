"""A journal of picture writes in progress, so a gateway killed mid-upload leaves no caption
texts without their image.

A picture's caption texts are written before its image vector (the image is searchable only
once its captions exist). A process killed in between (``kill -9``, OOM, power) runs no
``finally``, so before the captions are written :class:`WriteJournal` records which caption
texts belong to which image, in one small file per batch, and removes the file once the
batch is written or undone. At start-up, :func:`recover` looks at every file left behind:
an image that exists was written whole (its captions came first); for one that does not,
its caption texts are deleted. So after a crash each picture is whole or absent.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from clipsearch.store.protocol import StoreError, UnknownGroup, VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pending:
    """One journal file: the caption text ids of each image of a batch, in one group."""

    path: Path
    group: str
    texts_of: dict[str, list[str]]


class WriteJournal:
    """Files under ``folder``; every method is blocking (the caller picks the thread)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def begin(self, group: str, texts_of: Mapping[str, list[str]]) -> Path:
        """Record a batch before its captions are written; durable when this returns."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{uuid.uuid4().hex}.json"
        tmp = path.with_suffix(".tmp")
        data = json.dumps({"group": group, "texts_of": dict(texts_of)}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)  # a crash mid-write leaves a .tmp, never half a journal
        return path

    def end(self, path: Path) -> None:
        """The batch is written whole or undone: forget it."""
        path.unlink(missing_ok=True)

    def pending(self) -> list[Pending]:
        """The batches a crash interrupted (unreadable files are logged and dropped)."""
        if not self.folder.is_dir():
            return []
        out = []
        for tmp in self.folder.glob("*.tmp"):
            tmp.unlink(missing_ok=True)  # died before its captions were written
        for path in sorted(self.folder.glob("*.json")):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                texts_of = {str(k): [str(t) for t in v] for k, v in raw["texts_of"].items()}
                out.append(Pending(path, str(raw["group"]), texts_of))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.error("dropping unreadable write journal %s: %s", path, exc)
                path.unlink(missing_ok=True)
        return out


def recover(journal: WriteJournal, store: VectorStore) -> int:
    """Delete the caption texts of interrupted pictures whose image was never written;
    returns how many texts were deleted. A journal is kept when the store fails (retried
    at the next start)."""
    deleted = 0
    for entry in journal.pending():
        try:
            images = set(store.existing_ids(entry.group, "images", list(entry.texts_of)))
            orphans = [t for i, ts in entry.texts_of.items() if i not in images for t in ts]
            if orphans:
                deleted += store.delete(entry.group, "texts", orphans)
        except UnknownGroup:
            pass  # the collection was dropped since: nothing of it is left
        except StoreError as exc:
            log.error("could not recover interrupted writes %s: %s", entry.path, exc)
            continue
        journal.end(entry.path)
    if deleted:
        log.warning("removed %d caption texts of pictures a crash left half-written", deleted)
    return deleted


__all__ = ["Pending", "WriteJournal", "recover"]
