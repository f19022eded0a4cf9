"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from clipsearch.api.deps import StateDep
from clipsearch.api.errors import error_body

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Process is alive")
async def healthz() -> dict[str, str]:
    """Answers 200 while the process runs; it checks nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Encoder and store answer",
    responses={503: {"description": "A dependency failed; `details` names which"}},
)
async def readyz(state: StateDep) -> Any:
    """200 when both the encoder and the vector store answer; 503 naming the failed ones."""
    checks: dict[str, str] = {}
    try:
        await state.encoder.health()
        checks["encoder"] = "ok"
    except Exception as exc:  # any failure means not ready; the message says which
        checks["encoder"] = f"error: {exc}"
    try:
        await run_in_threadpool(state.store.health)
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"error: {exc}"
    failed = [name for name, result in checks.items() if result != "ok"]
    if failed:
        return JSONResponse(
            error_body("not_ready", f"not ready: {', '.join(failed)}", checks), status_code=503
        )
    return {"status": "ready", "checks": checks}
