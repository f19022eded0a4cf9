"""``POST /v1/similarity``: an image against 1..N texts, scored as clip-server's rank does
(cosine and softmax per text). Read scope, like a search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from clipsearch.api.deps import CollectionDep, StateDep
from clipsearch.api.errors import error_responses
from clipsearch.api.json_body import read_json
from clipsearch.api.similarity_schema import (
    SIMILARITY_BODY,
    SimilarityRequest,
    SimilarityResponse,
    TextScore,
)
from clipsearch.api.state import AppState
from clipsearch.core.errors import InvalidRequest, UnsupportedMediaType
from clipsearch.usecases.imaging import file_too_large
from clipsearch.usecases.search import Query

router = APIRouter(tags=["search"])


def _validate(data: Any) -> SimilarityRequest:
    try:
        return SimilarityRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


async def _from_form(state: AppState, request: Request) -> tuple[Query, list[str]]:
    limit = state.settings.max_similarity_texts
    # One more texts field than allowed still parses, so the refusal is too_many_texts.
    form = await request.form(max_files=1, max_fields=limit + 3)
    upload = form.get("file")
    texts = [t for t in form.getlist("texts") if isinstance(t, str)]
    image_id = form.get("image_id")
    if isinstance(upload, UploadFile) == isinstance(image_id, str):
        raise InvalidRequest(
            "multipart body needs exactly one of a `file` part or an `image_id` field",
            code="invalid_query",
        )
    if isinstance(image_id, str):
        return Query(image_id=image_id), texts
    assert isinstance(upload, UploadFile)
    max_bytes = state.settings.max_upload_bytes
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise file_too_large(max_bytes)
    return Query(image=data), texts


@router.post(
    "/v1/similarity",
    summary="Score an image against texts (cosine and softmax, as CLIP ranks them)",
    response_model=SimilarityResponse,
    responses=error_responses(401, 404, 409, 413, 415, 422, 503),
    openapi_extra=SIMILARITY_BODY,
)
async def similarity(
    state: StateDep, collection: CollectionDep, request: Request
) -> SimilarityResponse:
    """One image and 1..`CLIPSEARCH_MAX_SIMILARITY_TEXTS` texts -> per text, in request
    order, the cosine of the two vectors and the softmax over the texts of 100 x cosine
    (clip-server's `clip_score_cosine` and `clip_score`).

    Send the picture as multipart `file` with repeated `texts` fields, or JSON with
    `image_base64`, or `image_id` of a picture stored in `?collection=` (its stored vector
    is used). Refusals: `no_texts`, `too_many_texts`, `empty_text`, `text_too_long`,
    `invalid_image` / `invalid_base64` (422), `image_not_found` (404), `file_too_large` (413).
    """
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        image, texts = await _from_form(state, request)
    elif ctype.startswith("application/json"):
        body = _validate(await read_json(request, code="invalid_body"))
        image = Query(image_id=body.image_id, image_base64=body.image_base64)
        texts = body.texts
    else:
        raise UnsupportedMediaType("send multipart/form-data or application/json")
    result = await state.similarity.score(collection, image, texts)
    state.metrics.search_window.observe(result.took_ms)
    return SimilarityResponse(
        image_id=result.image_id,
        scores=[TextScore(text=s.text, cosine=s.cosine, softmax=s.softmax) for s in result.scores],
        took_ms=result.took_ms,
    )
