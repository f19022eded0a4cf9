"""The FastAPI app factory. Adapters are built once in the lifespan and closed after."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from clipsearch import __version__
from clipsearch.api.auth import build_access
from clipsearch.api.errors import install_error_handlers
from clipsearch.api.json_body import MULTIPART_PATHS, body_limits, stream_limits
from clipsearch.api.middleware import BodySizeLimit, RequestMetrics
from clipsearch.api.overload import EventStreams, InflightLimit, RequestClass
from clipsearch.api.routes import (
    browse,
    collections,
    docs,
    duplicates,
    health,
    images,
    jobs,
    models,
    search,
    similarity,
    stats,
    texts,
    transfer,
    web,
)
from clipsearch.api.security import install_access
from clipsearch.api.state import AppState
from clipsearch.bootstrap import (
    InstrumentedEncoder,
    InstrumentedStore,
    build_blobs,
    build_encoder,
    build_models,
    build_search_log,
    build_store,
)
from clipsearch.core.config import Settings, get_settings
from clipsearch.core.errors import CollectionMismatch
from clipsearch.core.metrics import Metrics
from clipsearch.encoder.protocol import Encoder, EncoderError
from clipsearch.encoder.service import ServiceEncoder
from clipsearch.store.protocol import VectorStore
from clipsearch.usecases.blobs import Blobs
from clipsearch.usecases.collections import Collections

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The gateway refuses to start (e.g. the default collection belongs to another model)."""


async def ensure_default_collection(collections: Collections, name: str) -> None:
    """Create the default group at start-up. One built with a model this gateway does not
    have does not stop the start: it answers 409 ``model_not_configured`` (and says so in
    ``/v1/stats`` and ``GET /v1/collections``) while every other collection is served."""
    try:
        await collections.for_write(name)
    except CollectionMismatch as exc:
        log.error("default collection %r cannot be served: %s", name, exc.message)
    except EncoderError as exc:
        # Service mode with clip-server still starting: serve anyway (/readyz says the
        # encoder is down); the group is checked on first use, when the model is known.
        log.warning("default collection not checked at start-up: %s", exc)


def create_app(
    settings: Settings | None = None,
    *,
    encoder: Encoder | None = None,
    store: VectorStore | None = None,
    blobs: Blobs | None = None,
) -> FastAPI:
    """Build the app. Tests may pass their own adapters; otherwise settings choose them."""
    cfg = settings or get_settings()
    try:  # before anything is built: no keys on a public address must not serve at all
        access = build_access(cfg)
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        enc = encoder or build_encoder(cfg)
        st = store if store is not None else await run_in_threadpool(build_store, cfg)
        bl = blobs if blobs is not None else build_blobs(cfg)
        # Service mode: say loudly (in the log) while clip-server is missing or starting.
        watcher: asyncio.Task[bool] | None = None
        if isinstance(enc, ServiceEncoder):
            watcher = asyncio.create_task(enc.watch_startup(cfg.encoder_start_period_s))
        state: AppState | None = None
        search_log = build_search_log(cfg)
        try:
            main = InstrumentedEncoder(enc, metrics)
            registry = build_models(cfg, main, lambda e: InstrumentedEncoder(e, metrics))
            state = AppState.build(
                cfg,
                main,
                InstrumentedStore(st, metrics),
                bl,
                metrics,
                search_log,
                ranker=enc if isinstance(enc, ServiceEncoder) else None,
                models=registry,
            )
            await ensure_default_collection(state.collections, cfg.default_collection)
            # A gateway killed mid-upload may have left captions without their image.
            await state.images.recover_interrupted_writes()
            app.state.clipsearch = state
            # Ingest jobs (resumes old ones) run on the measured encoder, whose pixel path
            # gives the pipeline the local sync fast path with the same metrics.
            await state.jobs.start()
            log.info("clipsearch ready: encoder=%s store=%s", enc.mode, st.kind)
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if state is not None:
                await state.jobs.stop()
                await state.collections.models.close()
            search_log.close()
            # Close what we built; adapters passed in belong to the caller.
            if encoder is None:
                await enc.close()
            if store is None:
                await run_in_threadpool(st.close)

    app = FastAPI(
        title="clipsearch",
        version=__version__,
        description="Self-hosted image<->text search over CLIP and Milvus.",
        lifespan=lifespan,
        # /docs and /redoc come from api/routes/docs.py, with their assets served here
        docs_url=None,
        redoc_url=None,
    )
    # Multipart uploads up to max_request_bytes; JSON bodies up to their route's limit.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=cfg.max_request_bytes,
        json_limits=body_limits(cfg),
        multipart_paths=MULTIPART_PATHS,
        stream_limits=stream_limits(cfg),
    )
    # Outside the body limit: a request past its class's cap is refused before any read.
    limits: dict[RequestClass, int] = {
        "search": cfg.max_inflight_search,
        "write": cfg.max_inflight_write,
        "ingest": cfg.max_inflight_ingest,
    }
    app.add_middleware(InflightLimit, limits=limits)
    app.state.event_streams = EventStreams(cfg.max_event_streams, cfg.event_stream_max_s)
    # Keys, Host, CORS, cross-site guard, security headers: outermost, so a request without
    # a valid key is refused before it counts against a cap or any body is read.
    install_access(app, cfg, access)
    # Outermost, so a 413 from the body limit is counted too.
    app.add_middleware(RequestMetrics, metrics=metrics)
    install_error_handlers(app)
    routers = (health, images, texts, browse, search, similarity, duplicates, stats, models)
    for module in (*routers, web, jobs, docs, transfer, collections):
        app.include_router(module.router)
    app.include_router(images.json_router)
    return app
