"""The service encoder: CLIP computed by a clip-server process, reached over its HTTP gateway.

jina (clip-server's framework) pins pydantic<2, so the gateway never imports it: it speaks
clip-server's JSON protocol directly with a pooled async httpx client.

* ``POST {url}/post`` with ``{"execEndpoint": "/encode", "data": [...], "parameters":
  {"drop_image_content": true}}``; texts as ``{"text": ...}``, images as ``{"blob": base64}``
  (shrunk first, see :mod:`clipsearch.encoder.service_images`).
* Calls are chunked to the batch size, bounded by one deadline each (``timeout_s``, all
  retries included), retried with jittered exponential backoff (encoding is idempotent) and
  guarded by a :class:`~clipsearch.encoder.resilience.CircuitBreaker`.
* An ``"embedding": null`` answer is an error, never a zero vector; vectors are
  L2-normalised here so both modes give unit vectors.
* The model: any name clip-server serves, its M-CLIP ones included
  (``M-CLIP/XLM-Roberta-Large-Vit-B-16Plus``...: the image size is looked up by name only to
  shrink pictures before sending). ``dim`` is learned from a probe encode; the fingerprint
  is the local encoder's (sha256 of the ONNX files) when ``model_path`` names the served
  folder, else
  ``service:{name}:{dim}``. With ``CLIPSEARCH_ENCODER_FALLBACK=local`` a local encoder takes
  over while clip-server is down, but only if both fingerprints are equal.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from clipsearch.core.config import Settings
from clipsearch.encoder import clip_protocol as wire
from clipsearch.encoder.clip_protocol import Doc, RankScore
from clipsearch.encoder.layouts import IMMICH, detect_layout
from clipsearch.encoder.model_config import fingerprint_files, read_model_config
from clipsearch.encoder.model_files import image_size_for_name
from clipsearch.encoder.protocol import Encoder, EncoderError, Vectors
from clipsearch.encoder.resilience import (
    CircuitBreaker,
    EncoderProtocolError,
    EncoderUnavailable,
    backoff_delay,
)
from clipsearch.encoder.service_images import prepare_image

log = logging.getLogger(__name__)

# What a user who sees "encoder not reachable" should do, in the log and in /readyz.
START_HINT = (
    "start clip-server (Docker Compose: the clip-server service, `docker compose up -d`; "
    "a host without a GPU adds `-f docker-compose.cpu.yml`) or point CLIPSEARCH_ENCODER_URL "
    "at a running one"
)


def describe_unreachable(url: str, exc: BaseException) -> str:
    """One line saying why ``url`` did not answer: a name that does not resolve (no such
    service on this network) reads differently from a refused or timed-out connection."""
    host = httpx.URL(url).host
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return f"clip-server at {url} unreachable: the name {host!r} does not resolve"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.TimeoutException):
        return f"clip-server at {url} unreachable: no answer in time ({exc!r})"
    return f"clip-server at {url} unreachable: {exc!r}"


PROBE_TEXT = "a photo"
DEFAULT_IMAGE_SIZE = 224
# Server answers that mean "busy or broken right now", worth another attempt.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ServiceEncoder:
    """:class:`~clipsearch.encoder.protocol.Encoder` backed by a clip-server over HTTP."""

    mode = "service"

    def __init__(
        self,
        url: str,
        *,
        model_name: str,
        model_path: Path | None = None,
        timeout_s: float = 30.0,
        batch_size: int = 32,
        retries: int = 2,
        backoff_s: float = 0.2,
        breaker: CircuitBreaker | None = None,
        max_pixels: int = 40_000_000,
        max_connections: int = 16,
        fallback: Callable[[], Encoder] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model_name = model_name
        self.model_path = model_path
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.retries = retries
        self.backoff_s = backoff_s
        self.breaker = breaker or CircuitBreaker(name=f"clip-server {self.url}")
        self.max_pixels = max_pixels
        self._fallback_factory = fallback
        self._fallback: Encoder | None = None
        self._dim: int | None = None
        self._file_fingerprint: str | None = None
        self.image_size = image_size_for_name(model_name) or DEFAULT_IMAGE_SIZE
        if model_path is not None:
            if detect_layout(model_path) == IMMICH:
                raise EncoderError(
                    f"CLIPSEARCH_MODEL_PATH={model_path} is in Immich's layout, which "
                    "clip-server does not read: serve it with CLIPSEARCH_ENCODER_MODE=local"
                )
            cfg = read_model_config(model_path, model_name)
            self._dim = cfg.dim
            self.image_size = image_size_for_name(model_name) or cfg.image_size or self.image_size
            self._file_fingerprint = cfg.fingerprint or fingerprint_files(
                model_path / "textual.onnx", model_path / "visual.onnx"
            )
        self._max_connections = max_connections
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (one per loop: connections are bound
        to the loop that opened them, and CLI tools may call ``asyncio.run`` repeatedly)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(
                base_url=self.url,
                timeout=self.timeout_s,
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
                transport=self._transport,
            )
            self._client_loop = loop
        return self._client

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceEncoder:
        """Build from settings; the model's dim is learned on the first answer from the server."""
        fallback: Callable[[], Encoder] | None = None
        if settings.encoder_fallback == "local":

            def fallback() -> Encoder:
                from clipsearch.encoder.local import LocalEncoder

                return LocalEncoder.from_settings(settings)

        encoder = cls(
            settings.encoder_url,
            model_name=settings.model_name,
            model_path=settings.model_path,
            timeout_s=settings.encoder_timeout_s,
            batch_size=settings.encoder_batch_size,
            retries=settings.encoder_retries,
            backoff_s=settings.encoder_backoff_s,
            breaker=CircuitBreaker(
                settings.encoder_breaker_threshold,
                settings.encoder_breaker_cooldown_s,
                name=f"clip-server {settings.encoder_url}",
            ),
            max_pixels=settings.max_pixels,
            max_connections=settings.encoder_max_connections,
            fallback=fallback,
        )
        if encoder._dim is None:
            encoder.try_learn_dim_sync()
        return encoder

    def try_learn_dim_sync(self, timeout_s: float = 3.0) -> None:
        """Best effort at startup: one quick probe so ``dim`` is known before the first request.

        A server that is still starting is normal; ``health()`` and the first encode learn
        the dim later, and ``dim`` raises :class:`EncoderUnavailable` until then.
        """
        payload = wire.request("/encode", [{"text": PROBE_TEXT}])
        try:
            with httpx.Client(base_url=self.url, timeout=timeout_s) as client:
                body = wire.parse_response(client.post("/post", json=payload))
            self._learn_dim(int(wire.embeddings(body, 1).shape[1]))
        except (httpx.HTTPError, EncoderError) as exc:
            log.info("clip-server at %s not answering yet (%r); dim learned later", self.url, exc)

    # --- model identity ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        if self._dim is None:
            raise EncoderUnavailable(
                f"the model's dimension is not known yet: clip-server at {self.url} has not "
                "answered a probe encode"
            )
        return self._dim

    @property
    def fingerprint(self) -> str:
        if self._file_fingerprint is not None:
            return self._file_fingerprint
        return f"service:{self.model_name}:{self.dim}"

    async def probe(self) -> int:
        """Encode one text to learn (or re-check) the served model's dimension."""
        vec = await self._encode_chunk([{"text": PROBE_TEXT}])
        return int(vec.shape[1])

    # --- encoding ------------------------------------------------------------------------
    async def encode_texts(self, texts: Sequence[str]) -> Vectors:
        """Texts -> [N,D] unit vectors, one ``/post`` per ``batch_size`` texts."""
        if any(not t for t in texts):
            # clip-server answers an empty text with embedding null: refuse it up front.
            raise EncoderProtocolError("clip-server cannot embed an empty text")
        docs: list[Doc] = [{"text": t} for t in texts]
        return await self._encode_or_fallback(docs, lambda enc: enc.encode_texts(texts))

    async def encode_images(self, images: Sequence[bytes]) -> Vectors:
        """Image bytes -> [N,D] unit vectors. Invalid images raise ``ImageDecodeError``."""
        images = list(images)
        size, max_pixels = self.image_size, self.max_pixels
        # Decoding (validation and shrinking) is CPU work: keep it off the event loop.
        sent = await asyncio.to_thread(
            lambda: [prepare_image(d, image_size=size, max_pixels=max_pixels) for d in images]
        )
        docs: list[Doc] = [{"blob": base64.b64encode(w.data).decode("ascii")} for w in sent]
        return await self._encode_or_fallback(docs, lambda enc: enc.encode_images(images))

    async def _encode_or_fallback(
        self, docs: list[Doc], local_call: Callable[[Encoder], Any]
    ) -> Vectors:
        if not docs:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        try:
            parts = [
                await self._encode_chunk(docs[i : i + self.batch_size])
                for i in range(0, len(docs), self.batch_size)
            ]
        except EncoderUnavailable as exc:
            local = await self._usable_fallback()
            if local is None:
                raise
            log.warning("clip-server unavailable (%s); encoding locally", exc)
            result: Vectors = await local_call(local)
            return result
        return np.concatenate(parts, axis=0)

    async def _usable_fallback(self) -> Encoder | None:
        """The local encoder, if configured and computing the very same model."""
        if self._fallback_factory is None:
            return None
        if self._fallback is None:
            self._fallback = await asyncio.to_thread(self._fallback_factory)
        local = self._fallback
        try:
            await local.health()
            local_fp = await asyncio.to_thread(lambda: local.fingerprint)
        except EncoderError as exc:
            log.warning("local fallback encoder unusable: %s", exc)
            return None
        if self._file_fingerprint is None or local_fp != self._file_fingerprint:
            log.warning(
                "not falling back: local model %s differs from the served one (%s)",
                local_fp[:16],
                self._file_fingerprint or f"service:{self.model_name}",
            )
            return None
        return local

    async def _encode_chunk(self, docs: list[Doc]) -> Vectors:
        answer = await self._post(wire.request("/encode", docs), retry=True)
        vecs = wire.embeddings(answer, len(docs))
        self._learn_dim(int(vecs.shape[1]))
        return vecs

    def _learn_dim(self, dim: int) -> None:
        if self._dim is None:
            self._dim = dim
            log.info("clip-server at %s serves %s with dim %d", self.url, self.model_name, dim)
        elif dim != self._dim:
            # A server restarted with another model must not write into the old collections.
            raise EncoderProtocolError(
                f"clip-server now returns {dim}-d vectors, expected {self._dim}: "
                "the served model changed"
            )

    async def _post(self, payload: dict[str, Any], *, retry: bool) -> dict[str, Any]:
        """POST to ``/post`` within one deadline, retrying transient failures."""
        deadline = time.monotonic() + self.timeout_s
        attempts = 1 + (self.retries if retry else 0)
        last: Exception | None = None
        for attempt in range(attempts):
            self.breaker.before_call()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.breaker.release_trial()
                break
            try:
                resp = await self._http().post("/post", json=payload, timeout=remaining)
            except httpx.TransportError as exc:  # connect, read, timeout, protocol
                last = exc
                self.breaker.record_failure()
            else:
                if resp.status_code in RETRYABLE_STATUS:
                    last = EncoderUnavailable(f"HTTP {resp.status_code}: {resp.text[:200]}")
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success()
                    return wire.parse_response(resp)
            if attempt + 1 < attempts:
                delay = min(backoff_delay(attempt, self.backoff_s), deadline - time.monotonic())
                if delay > 0:
                    await asyncio.sleep(delay)
        raise EncoderUnavailable(
            f"clip-server at {self.url} failed after {attempts} attempt(s) "
            f"within {self.timeout_s:g}s: {last!r}",
            retry_after_s=max(1.0, self.breaker.retry_after_s()),
        )

    # --- rank ----------------------------------------------------------------------------
    async def rank(self, text: str, candidates: Sequence[str | bytes]) -> list[RankScore]:
        """Score ``candidates`` (texts or image bytes) against ``text``; best first."""
        if not candidates:
            return []
        size, max_pixels = self.image_size, self.max_pixels

        def match(c: str | bytes) -> Doc:
            if isinstance(c, str):
                return {"text": c}
            data = prepare_image(c, image_size=size, max_pixels=max_pixels).data
            return {"blob": base64.b64encode(data).decode("ascii")}

        matches = await asyncio.to_thread(lambda: [match(c) for c in candidates])
        answer = await self._post(wire.rank_request(text, matches), retry=True)
        return wire.rank_scores(answer, len(candidates))

    # --- lifecycle -----------------------------------------------------------------------
    async def health(self) -> None:
        """Raise unless ``/dry_run`` reports code 0 (the executor, not just the gateway, is up)."""
        self.breaker.before_call()
        try:
            resp = await self._http().get("/dry_run", timeout=min(self.timeout_s, 5.0))
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.breaker.record_failure()
            raise EncoderUnavailable(describe_unreachable(self.url, exc)) from exc
        code = body.get("code") if isinstance(body, dict) else None
        if resp.status_code != 200 or code != 0:
            self.breaker.record_failure()
            detail = body.get("description") if isinstance(body, dict) else None
            raise EncoderUnavailable(f"clip-server not ready (code={code}): {detail}")
        self.breaker.record_success()
        if self._dim is None:
            await self.probe()

    async def watch_startup(self, start_period_s: float, poll_s: float = 2.0) -> bool:
        """Log loudly until clip-server answers: a warning with the reason and what to do on
        the first failure, an error once ``start_period_s`` has passed, an info line when it
        is up. Returns True once ready (run it as a background task; cancel it to stop)."""
        started = time.monotonic()
        warned = overdue = False
        while True:
            try:
                await self.health()
            except EncoderError as exc:
                waited = time.monotonic() - started
                if not warned:
                    log.warning(
                        "encoder not ready yet: %s; if it does not come up, %s", exc, START_HINT
                    )
                    warned = True
                elif not overdue and waited >= start_period_s:
                    log.error(
                        "encoder still not ready after %.0f s: %s. The gateway answers 503 "
                        "until it is; %s",
                        waited,
                        exc,
                        START_HINT,
                    )
                    overdue = True
                await asyncio.sleep(poll_s)
                continue
            if warned:
                log.info(
                    "clip-server at %s is ready after %.1f s", self.url, time.monotonic() - started
                )
            return True

    async def close(self) -> None:
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
        if self._fallback is not None:
            await self._fallback.close()
