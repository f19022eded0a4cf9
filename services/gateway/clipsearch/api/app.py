"""The FastAPI app factory. Adapters are built once in the lifespan and closed after."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from clipsearch import __version__
from clipsearch.api.middleware import BodySizeLimit
from clipsearch.api.routes import health
from clipsearch.api.state import AppState
from clipsearch.core.config import Settings, get_settings
from clipsearch.core.errors import install_error_handlers
from clipsearch.core.wiring import build_encoder, build_store
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import VectorStore

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    *,
    encoder: Encoder | None = None,
    store: VectorStore | None = None,
) -> FastAPI:
    """Build the app. Tests may pass their own adapters; otherwise settings choose them."""
    cfg = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        enc = encoder or build_encoder(cfg)
        st = store if store is not None else await run_in_threadpool(build_store, cfg)
        app.state.clipsearch = AppState(settings=cfg, encoder=enc, store=st)
        log.info("clipsearch ready: encoder=%s store=%s", enc.mode, st.kind)
        try:
            yield
        finally:
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
    )
    app.add_middleware(BodySizeLimit, max_bytes=cfg.max_request_bytes)
    install_error_handlers(app)
    app.include_router(health.router)
    return app
