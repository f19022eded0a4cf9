"""Writes that ride out a Milvus server restart.

A server that is restarting (a container restart, a rolling upgrade) refuses connections
for seconds. Upserts and deletes are idempotent, so such a failure is retried with capped
exponential backoff for up to ``wait_s`` seconds (``CLIPSEARCH_MILVUS_WRITE_RETRY_S``)
instead of failing the items of an ingest job. Only failures that say the server is not
there are retried; a refused request (bad schema, bad expression) fails at once. Reads are
not retried: a search should answer 503 quickly, not hang while the server is away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from pymilvus import MilvusException
from pymilvus.exceptions import MilvusUnavailableException

from clipsearch.store.protocol import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

# pymilvus words for "no server there": the gRPC channel's UNAVAILABLE, a failed connect,
# a server that is up but whose coordinators are not ready yet.
_UNAVAILABLE_WORDS = (
    "unavailable",
    "fail connecting",
    "connection refused",
    "not ready",
    "deadline exceeded",
    "service not ready",
    "socket closed",
    # pymilvus gave up retrying within the call's timeout (a read of a server starting up).
    "retry timeout",
    # A restarted server reloads its collections by itself, and refuses reads until then
    # (the store also reloads them itself on the next call, see MilvusStore._call).
    "collection not loaded",
)
MAX_DELAY_S = 5.0


def is_unavailable(exc: BaseException | None) -> bool:
    """True when ``exc`` (a pymilvus or socket failure) means the server is not reachable."""
    if isinstance(exc, MilvusUnavailableException | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, MilvusException):
        text = str(exc.message).lower()
        return any(word in text for word in _UNAVAILABLE_WORDS)
    return False


def retry_unavailable(
    call: Callable[[], T],
    what: str,
    wait_s: float,
    *,
    first_delay_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``call``, retrying while it raises a :class:`StoreError` marked ``unavailable``
    (the server was not there), for at most ``wait_s`` seconds in all."""
    deadline = clock() + wait_s
    delay = first_delay_s
    attempt = 0
    while True:
        try:
            return call()
        except StoreError as exc:
            attempt += 1
            # MilvusStore._call sets the flag from the pymilvus cause (is_unavailable).
            if not exc.unavailable or clock() + delay > deadline:
                raise
            if attempt == 1:
                log.warning(
                    "Milvus %s: server unavailable (%s); retrying for up to %.0f s",
                    what,
                    exc,
                    wait_s,
                )
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
