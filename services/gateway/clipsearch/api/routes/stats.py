"""/v1/stats (what is stored and how fast it answers) and /metrics (Prometheus)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST

from clipsearch.api.auth import PrincipalDep
from clipsearch.api.deps import StateDep
from clipsearch.core.keys import Scope

router = APIRouter(tags=["stats"])

STATS_EXAMPLE: dict[str, Any] = {
    "collections": {
        "default": {
            "counts": {"images": 120, "texts": 120},
            "index_type": "HNSW",
            "index_params": {"M": 16, "efConstruction": 200},
            "dim": 512,
            "model_name": "ViT-B-32::openai",
            "fingerprint": "sha256:1a2b...",
            "servable": True,
            "reason": None,
            "migration": None,
        }
    },
    "encoder": {
        "mode": "local",
        "runtime": "int8",
        "precision": "int8",
        "model_name": "ViT-B-32::openai-int8",
        "fingerprint": "sha256:1a2b...",
        "dim": 512,
        "health": "ok",
    },
    "store": {"kind": "faiss", "uri": "data/store.sqlite3", "health": "ok"},
    "blobs": {"bytes": 1048576},
    "uptime_s": 3600.0,
    "latency": {
        "search": {"count": 42, "p50_ms": 12.1, "p95_ms": 30.4},
        "ingest": {"count": 3, "p50_ms": 850.0, "p95_ms": 1200.0},
    },
}


def redact_uri(uri: str) -> str:
    """The URI without user:password (a token is never part of it anyway)."""
    parts = urlsplit(uri)
    if not parts.netloc or "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


async def _health(check: Any) -> str:
    try:
        await check()
    except Exception as exc:  # reported, not raised: stats must answer while degraded
        return f"error: {exc}"
    return "ok"


@router.get(
    "/v1/stats",
    summary="Collections, models, store and latency",
    responses={200: {"content": {"application/json": {"example": STATS_EXAMPLE}}}},
)
async def stats(state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Per collection: counts, index, dim, model, whether this gateway can serve it (and
    why not); plus encoder (mode, runtime and precision of the local encoder, model,
    fingerprint), store, blob bytes, uptime and
    p50/p95 latency of search and ingest (over the most recent requests since start). The
    store's URI (a server path for Milvus Lite) is shown to admins only (else ``null``)."""
    enc, store = state.encoder, state.store
    collections: dict[str, Any] = {}
    for view in await state.collections.all():
        collections[view.name] = {
            "counts": view.counts,
            "index_type": view.index_type,
            "index_params": view.index_params,
            "dim": view.dim,
            "model_name": view.model_name,
            "fingerprint": view.fingerprint,
            # False when this gateway does not have the collection's model (reason says).
            "servable": view.servable,
            "reason": view.reason,
            "migration": view.migration,
        }

    async def store_health() -> None:
        await run_in_threadpool(store.health)

    encoder_health = await _health(enc.health)  # loads the model: precision is known after
    return {
        "collections": collections,
        "encoder": {
            "mode": enc.mode,
            # Local mode: CLIPSEARCH_ENCODER_RUNTIME (fp32, int8, openvino) and what it
            # computes in (openvino: bf16 or f32, as the CPU allows); None in service mode.
            "runtime": getattr(enc, "runtime", None),
            "precision": getattr(enc, "precision", None),
            "model_name": enc.model_name,
            "fingerprint": enc.fingerprint,
            "dim": enc.dim,
            "health": encoder_health,
        },
        "store": {
            "kind": store.kind,
            "uri": redact_uri(state.settings.store_location)
            if principal.allows(Scope.admin)
            else None,
            "health": await _health(store_health),
        },
        "blobs": {"bytes": await run_in_threadpool(state.blobs.total_bytes)},
        "uptime_s": round(time.time() - state.started_at, 3),
        "latency": {
            "search": state.metrics.search_window.summary(),
            "ingest": state.metrics.ingest_window.summary(),
        },
    }


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"example": "clipsearch_http_requests_total{...} 3.0"}}}
    },
)
async def metrics(state: StateDep) -> Response:
    """Request counts/latency by route template and status, encoder batch sizes and latency,
    and vector store call latency, in the Prometheus text format."""
    return Response(content=state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
