"""Riding out an encoder outage during an ingest job.

An encode that raises :class:`~clipsearch.encoder.resilience.EncoderUnavailable` (server
down, circuit open, timeout) is not proof that the encoder is down: a clip-server can
answer one poisonous batch with HTTP 500. So the encoder's own ``health()`` decides:

* healthy -> the failure belongs to the batch; it is re-raised and the pipeline splits the
  batch to find the bad item (that item alone fails);
* not healthy -> an outage: the job pauses, ``health()`` is polled with jittered backoff
  (at most :data:`MAX_POLL_S` apart, so a returning encoder is noticed within seconds) and
  the batch is retried once it answers. The job's ``error`` field says it is waiting.

The wait is bounded by ``CLIPSEARCH_INGEST_ENCODER_WAIT_S``, counted from the start of the
outage, not per batch. Past it the batch's items are failed with a clear reason (the job
ends ``partial``/``failed`` and the worker moves on to the next job, instead of holding
the queue forever); until the encoder answers again, later batches of the job get one try
each and fail at once. Re-submitting the same sources later stores only what is missing:
the stored pictures are found as duplicates.

A *store* outage (a Milvus server restarting) is simpler: its writes already wait for it
(``CLIPSEARCH_MILVUS_WRITE_RETRY_S``), and :func:`wait_for_store` makes the job's reads
(which pictures are stored already) wait as long, so the job pauses instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from clipsearch.encoder.protocol import Encoder, EncoderError
from clipsearch.encoder.resilience import CircuitOpenError, EncoderUnavailable
from clipsearch.store.protocol import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")

MIN_POLL_S = 0.5
# Longest pause between two health probes: bounds how late a returning encoder is noticed.
MAX_POLL_S = 5.0


class EncoderGaveUp(Exception):
    """The encoder stayed unavailable for longer than the job may wait."""


class OutageWait:
    """Runs encoder calls, waiting out outages of up to ``wait_s`` seconds.

    ``note(text)`` is awaited when an outage starts (a human-readable line for the job's
    status) and ``note(None)`` when the encoder answers again.
    """

    def __init__(
        self,
        encoder: Encoder,
        wait_s: float,
        note: Callable[[str | None], Awaitable[None]],
        *,
        min_poll_s: float = MIN_POLL_S,
        max_poll_s: float = MAX_POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.encoder = encoder
        self.wait_s = wait_s
        self.note = note
        self.min_poll_s = min_poll_s
        self.max_poll_s = max_poll_s
        self._clock = clock
        self._since: float | None = None  # start of the current outage
        self._last: EncoderError | None = None
        self.outages = 0  # outages met (for logs and tests)

    @property
    def waiting(self) -> bool:
        """True from the start of an outage until an encode succeeds again."""
        return self._since is not None

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()``, retried after each outage it meets; see the module docstring.

        Raises :class:`EncoderGaveUp` when the outage outlasts ``wait_s``, and re-raises
        ``fn``'s error when the encoder is healthy (the failure is the input's).
        """
        while True:
            try:
                result = await fn()
            except EncoderUnavailable as exc:
                if not await self._wait_out(exc):
                    raise
                continue
            if self._since is not None:
                log.info("encoder back after %.1f s; ingest resumes", self._clock() - self._since)
                self._since = None
                await self.note(None)
            return result

    async def _wait_out(self, exc: EncoderUnavailable) -> bool:
        """False if the encoder is healthy right now; True once it is again after an
        outage; :class:`EncoderGaveUp` when the outage lasts too long."""
        if await self._healthy():
            return False
        if self._since is None:
            self._since = self._clock()
            self.outages += 1
            log.warning("encoder unavailable (%s); ingest waits up to %g s", exc, self.wait_s)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            await self.note(f"waiting for the encoder (unavailable since {stamp}): {exc}")
        attempt = 0
        while True:
            left = self._since + self.wait_s - self._clock()
            if left <= 0:
                raise EncoderGaveUp(
                    f"encoder unavailable for more than {self.wait_s:g} s "
                    f"(CLIPSEARCH_INGEST_ENCODER_WAIT_S): {self._last or exc}"
                )
            await asyncio.sleep(min(left, self._delay(attempt)))
            attempt += 1
            if await self._healthy():
                return True

    async def _healthy(self) -> bool:
        try:
            await self.encoder.health()
        except EncoderError as exc:
            self._last = exc
            return False
        return True

    def _delay(self, attempt: int) -> float:
        """Jittered exponential backoff; an open circuit refuses probes until its cooldown
        ends, so probing sooner than that is pointless."""
        backoff = min(self.max_poll_s, self.min_poll_s * 2.0 ** min(attempt, 16))
        delay = random.uniform(0.5, 1.0) * backoff  # jitter: gateways do not probe in step
        if isinstance(self._last, CircuitOpenError):
            delay = max(delay, self._last.retry_after_s)
        return max(self.min_poll_s, min(self.max_poll_s, delay))


async def wait_for_store(
    call: Callable[[], Awaitable[T]],
    wait_s: float,
    note: Callable[[str | None], Awaitable[None]],
) -> T:
    """``await call()``, retried with backoff while it raises a :class:`StoreError` that
    says the store is ``unavailable``, for ``wait_s`` seconds at most; ``note`` says why the
    job is waiting, and clears it once the store answers."""
    deadline = time.monotonic() + wait_s
    delay, waiting = MIN_POLL_S, False
    while True:
        try:
            result = await call()
        except StoreError as exc:
            if not exc.unavailable or time.monotonic() + delay > deadline:
                raise
            if not waiting:
                waiting = True
                await note(f"waiting for the vector store: {exc}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_POLL_S)
            continue
        if waiting:
            await note(None)
        return result
