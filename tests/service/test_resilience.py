"""Retries, deadline, circuit breaker and answer checks of the service encoder.

Runs against a scripted loopback HTTP server (stub_server.py): no encoder venv needed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from clipsearch.encoder.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    EncoderProtocolError,
    EncoderUnavailable,
)
from clipsearch.encoder.service import ServiceEncoder
from tests.service.stub_server import Reply, StubServer, encode_reply


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # Read through a call: mypy would otherwise keep ``breaker.state`` narrowed to the
    # first state asserted, across the calls that change it.
    return breaker.state


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert state_of(breaker) is BreakerState.closed
    breaker.before_call()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.open
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.retry_after_s == pytest.approx(10)

    clock.now += 10
    assert state_of(breaker) is BreakerState.half_open
    breaker.before_call()  # the one trial
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # a second caller while the trial is out
    breaker.record_failure()  # failed trial: open again, cooldown restarts
    assert state_of(breaker) is BreakerState.open
    assert breaker.retry_after_s() == pytest.approx(10)

    clock.now += 10
    breaker.before_call()
    breaker.record_success()
    assert state_of(breaker) is BreakerState.closed
    breaker.before_call()  # closed again: calls pass


def test_breaker_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown_s=10, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.closed


@pytest.fixture
def scripted() -> Iterator[tuple[StubServer, list[Reply]]]:
    """A stub whose replies are popped from a list; when empty it answers normally."""
    replies: list[Reply] = []

    def script(payload: dict[str, Any]) -> Reply:
        return replies.pop(0) if replies else encode_reply(payload)

    stub = StubServer(script)
    with stub.running():
        yield stub, replies


def make_encoder(url: str, **kw: Any) -> ServiceEncoder:
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("backoff_s", 0.01)
    return ServiceEncoder(url, model_name="ViT-B-32::openai", **kw)


def test_transient_503s_are_retried_and_vectors_normalised(
    scripted: tuple[StubServer, list[Reply]],
) -> None:
    stub, replies = scripted
    replies += [(503, {"error": "busy"}), (503, {"error": "busy"})]
    enc = make_encoder(stub.url, retries=2)

    vecs = asyncio.run(enc.encode_texts(["a", "b"]))

    assert len(stub.requests) == 3
    assert vecs.shape == (2, 4)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-6)
    assert enc.dim == 4
    assert enc.fingerprint == "service:ViT-B-32::openai:4"
    assert stub.requests[0]["execEndpoint"] == "/encode"
    assert stub.requests[0]["parameters"] == {"drop_image_content": True}
    assert stub.requests[0]["data"] == [{"text": "a"}, {"text": "b"}]


def test_batches_are_chunked(scripted: tuple[StubServer, list[Reply]]) -> None:
    stub, _ = scripted
    enc = make_encoder(stub.url, batch_size=2)
    vecs = asyncio.run(enc.encode_texts(["a", "b", "c", "d", "e"]))
    assert vecs.shape == (5, 4)
    assert [len(r["data"]) for r in stub.requests] == [2, 2, 1]


def test_breaker_opens_then_fails_fast_without_calling_the_server(
    scripted: tuple[StubServer, list[Reply]],
) -> None:
    stub, replies = scripted
    replies += [(503, {})] * 10
    breaker = CircuitBreaker(threshold=3, cooldown_s=60)
    enc = make_encoder(stub.url, retries=1, breaker=breaker)

    with pytest.raises(EncoderUnavailable):
        asyncio.run(enc.encode_texts(["x"]))  # 2 attempts, 2 failures
    with pytest.raises(EncoderUnavailable):
        asyncio.run(enc.encode_texts(["x"]))  # 3rd failure opens it mid-call
    seen = len(stub.requests)
    assert state_of(breaker) is BreakerState.open

    with pytest.raises(CircuitOpenError) as info:
        asyncio.run(enc.encode_texts(["x"]))
    assert len(stub.requests) == seen  # refused without a request
    assert info.value.retry_after_s > 50


def test_hung_server_fails_within_the_deadline(scripted: tuple[StubServer, list[Reply]]) -> None:
    stub, replies = scripted
    replies += [None, None, None]
    enc = make_encoder(stub.url, timeout_s=1.0, retries=2)
    start = time.monotonic()
    with pytest.raises(EncoderUnavailable):
        asyncio.run(enc.encode_texts(["x"]))
    # One deadline for the whole call, retries included.
    assert time.monotonic() - start < 1.8


def test_null_embedding_is_an_error_not_a_zero_vector(
    scripted: tuple[StubServer, list[Reply]],
) -> None:
    stub, replies = scripted
    replies.append((200, {"data": [{"text": "a", "embedding": [1.0, 0.0]}, {"embedding": None}]}))
    enc = make_encoder(stub.url)
    with pytest.raises(EncoderProtocolError, match="no embedding for input 1"):
        asyncio.run(enc.encode_texts(["a", "b"]))
    assert len(stub.requests) == 1  # a bad answer is not retried


def test_a_different_dim_after_a_restart_is_refused(
    scripted: tuple[StubServer, list[Reply]],
) -> None:
    stub, replies = scripted
    enc = make_encoder(stub.url)
    asyncio.run(enc.encode_texts(["a"]))
    replies.append(encode_reply({"data": [{"text": "a"}]}, dim=8))
    with pytest.raises(EncoderProtocolError, match="served model changed"):
        asyncio.run(enc.encode_texts(["a"]))


def test_health_requires_dry_run_code_zero(scripted: tuple[StubServer, list[Reply]]) -> None:
    stub, _ = scripted
    enc = make_encoder(stub.url)
    stub.dry_run_code = 1
    with pytest.raises(EncoderUnavailable, match="not ready"):
        asyncio.run(enc.health())
    stub.dry_run_code = 0
    asyncio.run(enc.health())
    assert enc.dim == 4  # health probes the model when its dim is unknown


def test_unreachable_server_raises_quickly() -> None:
    from tests.helpers import free_port

    enc = make_encoder(f"http://127.0.0.1:{free_port()}", timeout_s=3.0, retries=2)
    start = time.monotonic()
    with pytest.raises(EncoderUnavailable):
        asyncio.run(enc.encode_texts(["x"]))
    assert time.monotonic() - start < 3.0
    with pytest.raises(EncoderUnavailable, match="not known yet"):
        _ = enc.dim
