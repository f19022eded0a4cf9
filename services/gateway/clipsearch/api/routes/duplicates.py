"""/v1/collections/{name}/duplicates: groups of near-identical images, by embedding."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from clipsearch.api.deps import StateDep
from clipsearch.api.errors import error_responses
from clipsearch.api.routes._common import render_hit
from clipsearch.api.similar_schema import DuplicateGroupOut, DuplicatesResponse
from clipsearch.core.names import COLLECTION_PATTERN

router = APIRouter(prefix="/v1/collections", tags=["near duplicates"])


@router.get(
    "/{name}/duplicates",
    summary="Groups of near-duplicate images",
    response_model=DuplicatesResponse,
    responses=error_responses(404, 409, 422, 503),
)
async def duplicates(
    state: StateDep,
    name: Annotated[str, Path(pattern=COLLECTION_PATTERN, examples=["default"])],
    min_score: Annotated[
        float,
        Query(description="cosine at or above which two images are duplicates", examples=[0.95]),
    ] = 0.95,
    limit: Annotated[
        int | None,
        Query(description="images to scan in this page (default and most: duplicates_max_scan)"),
    ] = None,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page", max_length=256)
    ] = None,
) -> DuplicatesResponse:
    """Near-identical pictures (re-encoded, resized, slightly cropped copies) by embedding.

    The collection is scanned in id order, `limit` images per page; each group is whole
    and given once, by the page that scanned its smallest id, so follow `next_cursor`
    until it is null to see them all. 422 codes: `invalid_min_score` (outside [-1, 1]),
    `invalid_limit`, `invalid_cursor`; 404 `unknown_collection`.
    """
    page = await state.similar.duplicates(name, min_score=min_score, limit=limit, cursor=cursor)
    default = state.settings.default_collection
    groups = [
        DuplicateGroupOut(
            size=len(g.members),
            members=[render_hit(h, "images", name, default) for h in g.members],
        )
        for g in page.groups
    ]
    return DuplicatesResponse(
        groups=groups, scanned=page.scanned, next_cursor=page.next_cursor, took_ms=page.took_ms
    )
