"""The search log file: JSON lines, rotated by size (``logging.handlers.RotatingFileHandler``
behind a queue, so a search only enqueues its line and a thread does the disk writes).

Failures (a missing folder, a full disk, a file made read-only) are counted and logged
once a minute at most; they never reach the search (see :mod:`clipsearch.usecases.search_log`).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_WARN_EVERY_S = 60.0


class _Handler(logging.handlers.RotatingFileHandler):
    """Rotates at ``max_bytes``; an error is counted and logged now and then, not printed
    with a traceback to stderr on every line (what ``logging`` does by default)."""

    failures = 0
    _warned_at = 0.0

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        self.failures += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("search log %s: cannot write (%d lines lost)", self.baseFilename,
                        self.failures)  # fmt: skip


class RotatingSearchLog:
    """``path`` gets one JSON object per line; past ``max_bytes`` it is renamed ``path.1``
    (``.2``, ... up to ``backups``) and a new file is started."""

    enabled = True

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # reported by the handler on each write; the gateway serves
            log.warning("search log %s: %s", path, exc)
        # delay: the file is opened on the first line, so a bad path cannot stop start-up
        self._handler = _Handler(path, maxBytes=max_bytes, backupCount=backups, delay=True,
                                 encoding="utf-8")  # fmt: skip
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._queue: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self._listener = logging.handlers.QueueListener(self._queue, self._handler)
        self._listener.start()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def failures(self) -> int:
        return self._handler.failures

    def write(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)
        record = logging.LogRecord("clipsearch.search", logging.INFO, "", 0, line, None, None)
        self._queue.put(record)

    def flush(self) -> None:
        """Wait until every line written so far is on disk (tests; shutdown)."""
        with self._lock:
            if self._closed:
                return
            self._listener.stop()  # drains the queue
            self._handler.flush()
            self._listener.start()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._listener.stop()
            self._handler.close()
