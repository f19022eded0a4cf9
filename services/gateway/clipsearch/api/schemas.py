"""Request and response models of the /v1 API, with the examples shown in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clipsearch.api.expansion_schemas import (
    EXPAND_DESCRIPTION,
    EXPANSION_EXAMPLE,
    EXPANSIONS_FIELD_DESCRIPTION,
    QUERY_DESCRIPTION,
    ExpansionOut,
    TextQueryField,
)

TargetField = Literal["images", "texts"]
EXAMPLE_ID = "9f86d081884c7d659a2feb0c8a3d6e2b8e1f1a0c4a9e3a4e5f6b7c8d9e0f1a2b"


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ItemError(BaseModel):
    code: str
    message: str


class StoredItem(BaseModel):
    id: str | None = Field(description="sha256 of the image bytes (of the text, for texts)")
    source: str = Field(description="upload name for images; the normalised text for texts")
    status: Literal["stored", "updated", "duplicate", "failed"] = Field(
        description="updated: the picture was stored already and got the caption or "
        "metadata this upload brought; duplicate: nothing new"
    )
    error: ItemError | None = None


class StoreResponse(BaseModel):
    items: list[StoredItem]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"id": EXAMPLE_ID, "source": "cat.jpg", "status": "stored", "error": None},
                        {
                            "id": None,
                            "source": "notes.txt",
                            "status": "failed",
                            "error": {"code": "invalid_image", "message": "not a supported image"},
                        },
                    ]
                }
            ]
        }
    )


class TextIn(BaseModel):
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TextsRequest(BaseModel):
    texts: list[TextIn] = Field(min_length=1)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "texts": [
                        {"text": "a red circle", "metadata": {"lang": "en"}},
                        {"text": "a blue square"},
                    ]
                }
            ]
        }
    )


_SCALAR_SCHEMA: dict[str, Any] = {"type": ["string", "number", "boolean"]}
_LIST_SCHEMA: dict[str, Any] = {"type": "array", "items": _SCALAR_SCHEMA, "minItems": 1}
_NUMBER_SCHEMA: dict[str, Any] = {"type": "number"}
# The filter grammar (clipsearch.store.filter_grammar), for /docs and clients. Validation is
# the use-cases' (check_filter), so every bad filter answers the one `invalid_filter` code.
FILTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": 16,
    "additionalProperties": {
        "anyOf": [
            _SCALAR_SCHEMA,
            _LIST_SCHEMA,
            {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "properties": {
                    "eq": _SCALAR_SCHEMA,
                    "ne": _SCALAR_SCHEMA,
                    "in": _LIST_SCHEMA,
                    "nin": _LIST_SCHEMA,
                    "gt": _NUMBER_SCHEMA,
                    "gte": _NUMBER_SCHEMA,
                    "lt": _NUMBER_SCHEMA,
                    "lte": _NUMBER_SCHEMA,
                    "exists": {"type": "boolean"},
                },
            },
        ]
    },
    "examples": [
        {"album": "home"},
        {"year": {"gte": 2020, "lt": 2024}, "tag": {"in": ["cat", "dog"]}},
        {"album": {"ne": "x"}, "gps": {"exists": True}, "lang": ["en", "de"]},
    ],
}
FILTER_DESCRIPTION = (
    "metadata filter, every field must match: a scalar (equal), a list (any of), or an "
    "operator object (eq, ne, in, nin, gt, gte, lt, lte, exists; several are ANDed). "
    "Typed: true never matches 1, strings only strings, ranges only numbers; ne/nin match "
    "records without the field; exists: false means missing or null"
)


def filter_field() -> Any:
    """The optional ``filter`` of every request that takes one (search, batch, browse)."""
    return Field(None, description=FILTER_DESCRIPTION, json_schema_extra=FILTER_SCHEMA)


class SearchOptionsIn(BaseModel):
    target: TargetField = Field("images", description="images: search pictures; texts: texts")
    top_k: int = Field(10, ge=1, description="hits to return (<= max_top_k)")
    offset: int = Field(
        0, ge=0, description="hits to skip (paging; offset + top_k <= max_search_depth)"
    )
    min_score: Annotated[float, Field(ge=-1.0, le=1.0)] | Literal["auto"] | None = Field(
        None,
        description='cosine threshold, or "auto": the threshold stored with the collection '
        "for its model (`clipsearch evaluate --store-threshold`; 409 no_threshold without one)",
        examples=[0.25, "auto"],
    )
    filter: dict[str, Any] | None = filter_field()
    rerank: bool = Field(
        False,
        description="re-score the page as CLIP ranks candidates: rerank_score (softmax over "
        "the page of 100 x cosine) and rerank_cosine; clip-server's /rank in service mode",
    )


class TextSearchRequest(SearchOptionsIn):
    query: TextQueryField = Field(description=QUERY_DESCRIPTION)
    expand: bool = Field(False, description=EXPAND_DESCRIPTION)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"query": "a red circle", "target": "images", "top_k": 5},
                {"query": "a photo of a dog", "target": "texts", "filter": {"lang": ["en", "de"]}},
                {
                    "query": "a beach at sunset",
                    "filter": {"year": {"gte": 2020, "lt": 2024}, "gps": {"exists": True}},
                },
                {"query": "红色的圆形", "expand": True, "top_k": 5},
                {"query": {"a red circle": 1.0, "on the left": -0.3}, "top_k": 5},
            ]
        }
    )


class ImageSearchRequest(SearchOptionsIn):
    image_base64: str | None = Field(None, description="the image file, base64 (or data: URI)")
    image_id: str | None = Field(None, description="an image already stored: reuse its vector")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"image_id": EXAMPLE_ID, "target": "images", "top_k": 5},
                {"image_base64": "iVBORw0KGgoAAAANSUhEUgAA...", "target": "texts"},
            ]
        }
    )

    @model_validator(mode="after")
    def _one_image(self) -> ImageSearchRequest:
        if (self.image_base64 is None) == (self.image_id is None):
            raise ValueError("give exactly one of image_base64 or image_id")
        return self


class BatchQuery(BaseModel):
    text: TextQueryField | None = Field(None, description=QUERY_DESCRIPTION)
    image_base64: str | None = None
    image_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BatchQuery:
        given = [v for v in (self.text, self.image_base64, self.image_id) if v is not None]
        if len(given) != 1:
            raise ValueError("each query needs exactly one of text, image_base64 or image_id")
        return self


class BatchSearchRequest(SearchOptionsIn):
    queries: list[BatchQuery] = Field(min_length=1)
    expand: bool = Field(False, description="for every text query: " + EXPAND_DESCRIPTION)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "queries": [{"text": "a red circle"}, {"image_id": EXAMPLE_ID}],
                    "target": "images",
                    "top_k": 3,
                },
                {
                    "queries": [{"text": "金毛"}, {"text": {"a red circle": 1, "a star": -0.2}}],
                    "expand": True,
                },
            ]
        }
    )


class SearchHit(BaseModel):
    id: str
    score: float = Field(description="cosine similarity, higher is closer")
    caption: str | None = Field(None, description="image hits: the image's caption")
    text: str | None = Field(None, description="text hits: the text")
    image_id: str | None = Field(None, description="text hits: the image the text describes")
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    metadata_omitted: str | None = Field(
        None, description="why the stored metadata is not shown (stored before the limits)"
    )
    image_url: str | None = Field(None, description="the original file, if there is an image")
    thumbnail_url: str | None = None
    rerank_score: float | None = Field(
        None, description="rerank: softmax over the page (clip-server's clip_score)"
    )
    rerank_cosine: float | None = Field(
        None, description="rerank: cosine as re-scored (clip-server's clip_score_cosine)"
    )


HIT_EXAMPLE: dict[str, Any] = {
    "id": EXAMPLE_ID,
    "score": 0.31,
    "caption": "a red circle",
    "text": None,
    "image_id": None,
    "source": "shape_0001.png",
    "metadata": {"set": "demo"},
    "image_url": f"/v1/images/{EXAMPLE_ID}/file",
    "thumbnail_url": f"/v1/images/{EXAMPLE_ID}/thumbnail",
}


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    took_ms: float
    expansions: list[ExpansionOut] | None = Field(None, description=EXPANSIONS_FIELD_DESCRIPTION)
    no_match: bool | None = Field(
        None,
        description='min_score "auto" only: true when no hit of this page cleared the '
        "collection's threshold (with offset 0: nothing in the collection is a good match)",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"hits": [HIT_EXAMPLE], "took_ms": 12.5},
                {"hits": [HIT_EXAMPLE], "took_ms": 14.0, "expansions": [EXPANSION_EXAMPLE]},
                {"hits": [], "took_ms": 9.0, "no_match": True},
            ]
        }
    )


class BatchResult(BaseModel):
    hits: list[SearchHit]
    expansions: list[ExpansionOut] | None = Field(None, description=EXPANSIONS_FIELD_DESCRIPTION)
    no_match: bool | None = Field(
        None,
        description='min_score "auto" only: true when no hit of this page cleared the '
        "collection's threshold (with offset 0: nothing in the collection is a good match)",
    )


class BatchSearchResponse(BaseModel):
    results: list[BatchResult]
    took_ms: float

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"results": [{"hits": [HIT_EXAMPLE]}], "took_ms": 20.1}]}
    )
