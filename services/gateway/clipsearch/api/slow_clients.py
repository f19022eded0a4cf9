"""A deadline on the request head, which uvicorn does not have.

uvicorn's ``timeout_keep_alive`` closes a connection that stays silent between requests, but
any byte cancels it and nothing re-arms it: a client that sends its headers one byte every
few seconds (slowloris) holds a connection, and its buffer, forever. The protocol here
gives every request head ``seconds`` from its first byte (or from the connection, for the
first request) to arrive whole; past that the connection is closed. Bodies are not timed
here: the routes read them while they stream, under their own limits.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _HeadDeadline(H11Protocol):
    head_timeout_s = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of a next request head: its clock starts now
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the head is in (the body, if any, is the route's business)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def head_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a ``seconds`` deadline on every request head
    (``uvicorn.run(..., http=head_deadline_protocol(10))``)."""
    return type("HeadDeadlineH11", (_HeadDeadline,), {"head_timeout_s": seconds})
