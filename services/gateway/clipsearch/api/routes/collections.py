"""/v1/collections: list, read, create (idempotent) and drop collections, migrate them,
and store the threshold of ``min_score: "auto"``.

A collection is a store group (an ``images`` and a ``texts`` Milvus collection) built with
one model. Reads need the read scope, creating and dropping the admin scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse

from clipsearch.api.auth import PrincipalDep, RequireAdmin, RequireRead
from clipsearch.api.collections_schema import (
    CollectionDeleted,
    CollectionList,
    CollectionOut,
    CollectionPut,
    MigrateIn,
    ThresholdIn,
)
from clipsearch.api.deps import StateDep
from clipsearch.api.errors import error_responses
from clipsearch.api.jobs_schema import JobAccepted
from clipsearch.api.links import ACCEPTED_JOB
from clipsearch.core.names import COLLECTION_PATTERN
from clipsearch.jobs.migration import start_migration
from clipsearch.store.protocol import IndexSpec

router = APIRouter(prefix="/v1/collections", tags=["collections"])
NameDep = Annotated[
    str,
    Path(pattern=COLLECTION_PATTERN, description="1-64 letters, digits or _", examples=["team"]),
]


@router.get(
    "",
    summary="List collections",
    response_model=CollectionList,
    responses=error_responses(401, 403, 503),
    dependencies=[RequireRead],
)
async def list_collections(state: StateDep) -> CollectionList:
    """Every collection: model and fingerprint, dim, index, counts, creation time, and
    whether this gateway can serve it (``servable``; ``reason`` when not, e.g. its model
    is not configured)."""
    views = await state.collections.all()
    return CollectionList(collections=[CollectionOut.of(v) for v in views])


@router.get(
    "/{name}",
    summary="One collection",
    response_model=CollectionOut,
    responses=error_responses(401, 403, 404, 422, 503),
    dependencies=[RequireRead],
)
async def get_collection(state: StateDep, name: NameDep) -> CollectionOut:
    """The collection's model, index, counts and servability; 404 ``unknown_collection``."""
    return CollectionOut.of(await state.collections.describe(name))


@router.put(
    "/{name}",
    summary="Create a collection (idempotent)",
    response_model=CollectionOut,
    status_code=201,
    responses={
        200: {"model": CollectionOut, "description": "it exists with this spec"},
        **error_responses(401, 403, 409, 422, 503),
    },
    dependencies=[RequireAdmin],
)
async def put_collection(
    state: StateDep, name: NameDep, body: Annotated[CollectionPut | None, Body()] = None
) -> JSONResponse:
    """Create ``name`` for ``model`` (default: the main model) with ``index`` (default: the
    server's index settings): ``201``. The same request again is ``200``; one whose model
    or index differs from the existing collection is ``409 collection_spec_mismatch``; a
    model this gateway does not have is ``409 model_not_configured``; bad index params
    ``422``."""
    spec = body or CollectionPut()
    index = IndexSpec(spec.index.type, dict(spec.index.params)) if spec.index else None
    view, created = await state.collections.create(name, model=spec.model, index=index)
    out = CollectionOut.of(view)
    return JSONResponse(out.model_dump(), status_code=201 if created else 200)


@router.delete(
    "/{name}",
    summary="Drop a collection, its vectors, records and unshared originals",
    response_model=CollectionDeleted,
    responses=error_responses(401, 403, 404, 422, 503),
    dependencies=[RequireAdmin],
)
async def delete_collection(state: StateDep, name: NameDep) -> CollectionDeleted:
    """Cancel the jobs writing to it, drop both Milvus collections and the record, delete
    the originals and thumbnails no other collection references. 404 when unknown."""
    result = await state.collections.drop(name, state.blobs, state.jobs.cancel_collection)
    return CollectionDeleted(
        name=name,
        images=result["images"],
        blobs_removed=result["blobs_removed"],
        jobs_cancelled=result["jobs_cancelled"],
    )


@router.post(
    "/{name}/migrate",
    summary="Move a collection to another model without downtime",
    response_model=JobAccepted,
    status_code=202,
    responses={202: {"links": ACCEPTED_JOB}, **error_responses(401, 403, 404, 409, 422, 503)},
    dependencies=[RequireAdmin],
)
async def migrate_collection(
    state: StateDep, principal: PrincipalDep, name: NameDep, body: MigrateIn
) -> JobAccepted:
    """Start a ``migrate`` job (progress in ``GET /v1/jobs/{id}`` and its events): the
    stored originals and texts are re-encoded with ``model`` into new collections while
    searches use the old ones and writes go to both; then the collection switches at once
    and the old collections are dropped after ``CLIPSEARCH_MIGRATION_GRACE_S``. ``409``:
    ``model_not_configured``, ``migration_not_needed`` (it already uses that model),
    ``migration_in_progress``; ``404`` unknown collection."""
    job = await start_migration(state.jobs, state.collections, name, body.model, principal.name)
    return JobAccepted.of(job)


@router.put(
    "/{name}/threshold",
    summary='Store the threshold of min_score "auto"',
    response_model=CollectionOut,
    responses=error_responses(401, 403, 404, 409, 422, 503),
    dependencies=[RequireAdmin],
)
async def put_threshold(state: StateDep, name: NameDep, body: ThresholdIn) -> CollectionOut:
    """Store the cosine a hit must reach when a search sends ``min_score: "auto"`` (as
    ``clipsearch evaluate --store-threshold`` computes it for the collection's model);
    ``null`` removes it. It belongs to the model: a migration to another model drops it.
    ``409 model_mismatch`` when ``model_fingerprint`` is not the collection's model; ``404``
    unknown collection."""
    view = await state.collections.set_threshold(name, body.min_score, body.model_fingerprint)
    return CollectionOut.of(view)
