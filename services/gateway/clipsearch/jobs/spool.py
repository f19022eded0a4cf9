"""The upload spool (``data/spool/<job>/``) under a byte quota.

Multipart ingest streams every file part to the spool, where it waits until its job has
read it. Without a quota a few large uploads (or many queued jobs) fill the data disk that
Milvus Lite and the blobs live on. :class:`Spool` counts the bytes it holds: measured once at
start-up, then every write takes its bytes first (past ``CLIPSEARCH_SPOOL_MAX_BYTES`` the
upload is refused with 429 ``spool_full`` and ``Retry-After``, and its partial files go)
and every removal, which all go through here, gives them back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

from clipsearch.core.errors import TooManyRequests

# How long a refused upload is told to wait: jobs free the spool as they read it.
RETRY_AFTER_S = 30.0


class SpoolFull(TooManyRequests):
    """The spool holds its quota; the upload may be sent again once jobs have read theirs."""

    code = "spool_full"


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it is missing)."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


class Spool:
    """The spool folder and its byte count. Thread-safe: writes happen in worker threads."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.used = 0
        self._lock = threading.Lock()

    def dir(self, key: str) -> Path:
        return self.root / key

    def sweep(self, keep: set[str]) -> None:
        """Remove every job folder except those of ``keep``, then measure what is left."""
        if self.root.is_dir():
            for d in self.root.iterdir():
                if d.name not in keep:
                    shutil.rmtree(d, ignore_errors=True)
        used = tree_bytes(self.root)
        with self._lock:
            self.used = used

    def take(self, n: int) -> None:
        """Count ``n`` bytes about to be written, or raise :class:`SpoolFull`."""
        with self._lock:
            if self.used + n > self.max_bytes:
                raise SpoolFull(
                    f"the upload spool is full ({self.max_bytes} bytes); retry later",
                    details={"max_bytes": self.max_bytes},
                    retry_after_s=RETRY_AFTER_S,
                )
            self.used += n

    def _give_back(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)

    def remove_files(self, paths: Iterable[str]) -> None:
        """Delete spooled files (missing ones are fine) and give their bytes back."""
        freed = 0
        for p in paths:
            try:
                freed += os.lstat(p).st_size
                os.unlink(p)
            except FileNotFoundError:
                pass
        self._give_back(freed)

    def remove_tree(self, path: Path) -> None:
        """Delete a job's spool folder and give its bytes back."""
        freed = tree_bytes(path)
        shutil.rmtree(path, ignore_errors=True)
        self._give_back(freed)
