"""Failure handling for a remote encoder: typed errors, backoff, and a circuit breaker.

Every error here is an :class:`~clipsearch.encoder.protocol.EncoderError` carrying
``retry_after_s``, so the API can answer 503 with a ``Retry-After`` header without knowing
which encoder failed or how.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from clipsearch.encoder.protocol import EncoderError

DEFAULT_RETRY_AFTER_S = 5.0


class EncoderUnavailable(EncoderError):
    """The encoder could not be reached or did not answer in time (worth retrying later)."""

    def __init__(self, message: str, *, retry_after_s: float = DEFAULT_RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CircuitOpenError(EncoderUnavailable):
    """Calls are refused without trying: the encoder failed too often, too recently."""


class EncoderProtocolError(EncoderError):
    """The encoder answered, but not with what was asked (bad status, missing embedding)."""

    retry_after_s = DEFAULT_RETRY_AFTER_S


def backoff_delay(attempt: int, base_s: float, cap_s: float = 5.0) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)].

    Jitter keeps many gateways that lost the same server from retrying in lockstep.
    """
    return random.uniform(0.0, min(cap_s, base_s * (2**attempt)))


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; after ``cooldown_s`` lets one trial through.

    closed --N failures--> open --cooldown--> half_open --success--> closed
                                                       --failure--> open (cooldown again)

    While half-open only one call at a time is let through (the trial); the rest are refused
    as if open, so a recovering server is not flooded. Thread-safe; ``clock`` is injectable
    for tests.
    """

    def __init__(
        self,
        threshold: int = 5,
        cooldown_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "encoder",
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.closed
        if self._clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.half_open
        return BreakerState.open

    def retry_after_s(self) -> float:
        """Seconds until a call may be tried again (0 when closed)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))

    def before_call(self) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go out now."""
        with self._lock:
            state = self._state_locked()
            if state is BreakerState.closed:
                return
            if state is BreakerState.half_open and not self._trial_in_flight:
                self._trial_in_flight = True
                return
            assert self._opened_at is not None
            remaining = max(0.0, self.cooldown_s - (self._clock() - self._opened_at))
        raise CircuitOpenError(
            f"{self.name} circuit open after {self.threshold} consecutive failures; "
            f"next try in {remaining:.1f}s",
            # A half-open breaker with its trial out will know within one call.
            retry_after_s=max(1.0, remaining),
        )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            was_trial = self._trial_in_flight
            self._trial_in_flight = False
            if was_trial or self._failures >= self.threshold:
                # A failed trial restarts the cooldown from now.
                self._opened_at = self._clock()

    def release_trial(self) -> None:
        """Give back a half-open trial that ended with neither verdict (e.g. a bad input)."""
        with self._lock:
            self._trial_in_flight = False
