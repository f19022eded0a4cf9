"""/v1/models: which model is configured (loaded or not), which are cached, which exist."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from clipsearch.api.auth import PrincipalDep, RequireRead
from clipsearch.api.deps import StateDep
from clipsearch.api.errors import error_responses
from clipsearch.api.models_schema import ModelsOut
from clipsearch.core.keys import Scope
from clipsearch.usecases.models import describe_models

router = APIRouter(tags=["models"])


@router.get(
    "/v1/models",
    summary="Configured, cached and catalog models",
    response_model=ModelsOut,
    responses=error_responses(401, 403),
    dependencies=[RequireRead],
)
async def list_models(state: StateDep, principal: PrincipalDep) -> ModelsOut:
    """The encoder's mode and model (loaded yet or not; its dim, languages, layout and
    score kind: cosine for CLIP, sigmoid for SigLIP), every model folder in the cache, and
    the catalog: each name, where its files come from and which encoder modes serve it.
    Nothing is loaded or downloaded to answer. Folders are shown to admin keys only."""
    report = await run_in_threadpool(describe_models, state.settings, state.encoder)
    return ModelsOut.of(report, show_folders=principal.allows(Scope.admin))
