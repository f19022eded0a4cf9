"""/v1/search: text, image and batch queries against the images or the texts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from clipsearch.api.deps import CollectionDep, StateDep
from clipsearch.api.errors import error_responses
from clipsearch.api.expansion_schemas import ExpansionOut, ExpansionTerm
from clipsearch.api.json_body import JsonRoute, parse_json_field, read_json
from clipsearch.api.routes._common import render_hit
from clipsearch.api.schemas import (
    FILTER_DESCRIPTION,
    BatchResult,
    BatchSearchRequest,
    BatchSearchResponse,
    ImageSearchRequest,
    SearchHit,
    SearchOptionsIn,
    SearchResponse,
    TextSearchRequest,
)
from clipsearch.api.state import AppState
from clipsearch.core.errors import InvalidRequest
from clipsearch.usecases.expansion import Expanded
from clipsearch.usecases.imaging import file_too_large
from clipsearch.usecases.search import Query, SearchOptions, SearchResult

router = APIRouter(prefix="/v1/search", tags=["search"], route_class=JsonRoute)
ERRORS = error_responses(404, 409, 413, 422, 503)


def _options(body: SearchOptionsIn) -> SearchOptions:
    return SearchOptions(
        target=body.target,
        top_k=body.top_k,
        offset=body.offset,
        min_score=body.min_score,
        filter=body.filter,
        rerank=body.rerank,
    )


async def _hits(
    state: AppState,
    result: SearchResult,
    queries: list[Query],
    opts: SearchOptions,
    collection: str,
) -> list[list[SearchHit]]:
    default = state.settings.default_collection
    target = opts.target
    if not opts.rerank:
        return [[render_hit(h, target, collection, default) for h in hits] for hits in result.hits]
    pages = await state.rerank.rerank(queries, target, result.hits)
    return [
        [
            render_hit(r.hit, target, collection, default).model_copy(
                update={"rerank_score": r.softmax, "rerank_cosine": r.cosine}
            )
            for r in page
        ]
        for page in pages
    ]


def _text_query(text: str | dict[str, float], expand: bool) -> Query:
    if isinstance(text, dict):
        return Query(weighted=tuple(text.items()), expand=expand)
    return Query(text=text, expand=expand)


def _expansions(used: list[Expanded] | None) -> list[ExpansionOut] | None:
    if used is None:
        return None
    return [
        ExpansionOut(
            text=e.text,
            matched=e.matched,
            terms=[ExpansionTerm(term=t, expansion=x) for t, x in e.terms],
            expansions=list(e.texts),
        )
        for e in used
    ]


def _used(result: SearchResult, index: int) -> list[ExpansionOut] | None:
    return _expansions(result.expansions[index]) if result.expansions else None


def _no_match(result: SearchResult, index: int) -> bool | None:
    return result.no_match[index] if result.no_match is not None else None


async def _run(
    state: AppState, collection: str, queries: list[Query], opts: SearchOptions
) -> SearchResult:
    result = await state.search.search(collection, queries, opts)
    state.metrics.search_window.observe(result.took_ms)
    return result


@router.post("/text", summary="Search by text", response_model=SearchResponse, responses=ERRORS)
async def search_text(
    state: StateDep, collection: CollectionDep, body: TextSearchRequest
) -> SearchResponse:
    """Text query -> images (`target: images`) or texts (`target: texts`), best first.

    `query` is a text or weighted terms (`{"a red circle": 1.0, "on the left": -0.3}`);
    `expand: true` adds the expansion dictionary's expansions and lists them in the response.
    """
    opts = _options(body)
    queries = [_text_query(body.query, body.expand)]
    result = await _run(state, collection, queries, opts)
    hits = await _hits(state, result, queries, opts, collection)
    return SearchResponse(
        hits=hits[0],
        took_ms=result.took_ms,
        expansions=_used(result, 0),
        no_match=_no_match(result, 0),
    )


# Both request forms in OpenAPI: a file upload, or JSON with base64 / a stored image's id.
_IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "target": {"type": "string", "enum": ["images", "texts"]},
                        "top_k": {"type": "integer", "default": 10},
                        "offset": {"type": "integer", "default": 0},
                        "min_score": {
                            "oneOf": [{"type": "number"}, {"type": "string", "enum": ["auto"]}]
                        },
                        "filter": {
                            "type": "string",
                            "description": "JSON object: " + FILTER_DESCRIPTION,
                        },
                        "rerank": {"type": "boolean", "default": False},
                    },
                }
            },
            "application/json": {
                "schema": ImageSearchRequest.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                ),
                "examples": {
                    "by_id": {
                        "value": {"image_id": "9f86d08188...", "target": "images", "top_k": 5}
                    },
                    "by_base64": {"value": {"image_base64": "iVBORw0KGgo...", "target": "texts"}},
                },
            },
        },
    }
}


def _validate(model: type[ImageSearchRequest], data: Any) -> ImageSearchRequest:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


async def _image_query_from_form(state: AppState, request: Request) -> tuple[Query, SearchOptions]:
    form = await request.form(max_files=1, max_fields=16)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("multipart body needs a `file` part", code="missing_file")
    fields: dict[str, Any] = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
    if "filter" in fields:
        raw = fields["filter"]
        fields["filter"] = (
            parse_json_field(raw, what="filter", code="invalid_filter") if raw.strip() else None
        )
    # image_id stands in for the file so the shared model's "exactly one image" check passes.
    body = _validate(ImageSearchRequest, {**fields, "image_id": "upload", "image_base64": None})
    limit = state.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise file_too_large(limit)
    return Query(image=data), _options(body)


@router.post(
    "/image",
    summary="Search by image",
    response_model=SearchResponse,
    responses=ERRORS,
    openapi_extra=_IMAGE_BODY,
)
async def search_image(
    state: StateDep, collection: CollectionDep, request: Request
) -> SearchResponse:
    """Image query -> similar images (`target: images`) or describing texts (`target: texts`).

    Send the picture as multipart `file` (options as form fields), or JSON with
    `image_base64`, or `image_id` of a stored image (its stored vector is reused).
    """
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        query, opts = await _image_query_from_form(state, request)
    else:
        # JSON, or else a 422 invalid_body: the body is neither JSON nor multipart.
        body = _validate(ImageSearchRequest, await read_json(request, code="invalid_body"))
        opts = _options(body)
        if body.image_id is not None:
            query = Query(image_id=body.image_id)
        else:
            query = Query(image_base64=body.image_base64)
    result = await _run(state, collection, [query], opts)
    hits = await _hits(state, result, [query], opts, collection)
    return SearchResponse(hits=hits[0], took_ms=result.took_ms, no_match=_no_match(result, 0))


@router.post(
    "/batch",
    summary="Many queries at once",
    response_model=BatchSearchResponse,
    responses=ERRORS,
)
async def search_batch(
    state: StateDep, collection: CollectionDep, body: BatchSearchRequest
) -> BatchSearchResponse:
    """Up to `max_batch_queries` text / image queries in one request; results in query order.

    All texts are encoded in one encoder call, all images in another, and the store is
    searched once with every query vector.
    """
    queries = [
        _text_query(q.text, body.expand)
        if q.text is not None
        else Query(image_id=q.image_id, image_base64=q.image_base64)
        for q in body.queries
    ]
    opts = _options(body)
    result = await _run(state, collection, queries, opts)
    hits = await _hits(state, result, queries, opts, collection)
    return BatchSearchResponse(
        results=[
            BatchResult(hits=h, expansions=_used(result, i), no_match=_no_match(result, i))
            for i, h in enumerate(hits)
        ],
        took_ms=result.took_ms,
    )
