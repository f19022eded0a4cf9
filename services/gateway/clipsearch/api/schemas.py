"""Request and response models of the /v1 API, with the examples shown in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    status: Literal["stored", "duplicate", "failed"]
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


class SearchOptionsIn(BaseModel):
    target: TargetField = Field("images", description="images: search pictures; texts: texts")
    top_k: int = Field(10, ge=1, description="hits to return (top_k + offset <= max_top_k)")
    offset: int = Field(0, ge=0, description="hits to skip (paging)")
    min_score: float | None = Field(None, ge=-1.0, le=1.0, description="cosine threshold")
    filter: dict[str, Any] | None = Field(
        None, description="metadata field -> value or list of values (all must match)"
    )


# A text query: a string, or terms with weights (weighted sum of their unit vectors).
TextQueryField = Annotated[str, Field(min_length=1)] | dict[str, float]
_QUERY_DESCRIPTION = (
    "a text, or {term: weight} (at most max_query_terms terms, weights summing to > 0): "
    "the weighted sum of the terms' normalised vectors, renormalised"
)
_EXPAND_DESCRIPTION = (
    "also encode the expansion dictionary's expansions of the query (whole query, else the "
    "longest dictionary terms inside it) and search with the mean of the normalised vectors"
)


class TextSearchRequest(SearchOptionsIn):
    query: TextQueryField = Field(description=_QUERY_DESCRIPTION)
    expand: bool = Field(False, description=_EXPAND_DESCRIPTION)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"query": "a red circle", "target": "images", "top_k": 5},
                {"query": "a photo of a dog", "target": "texts", "filter": {"lang": ["en", "de"]}},
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
    text: TextQueryField | None = Field(None, description=_QUERY_DESCRIPTION)
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
    expand: bool = Field(False, description="for every text query: " + _EXPAND_DESCRIPTION)

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


class ExpansionTerm(BaseModel):
    term: str = Field(description="the dictionary term found in the query")
    expansion: str = Field(description="the expansion used for it")


class ExpansionOut(BaseModel):
    """What `expand` did to one query (or one term of a weighted query)."""

    text: str = Field(description="the query text (or weighted term) that was expanded")
    matched: Literal["query", "terms"] = Field(
        description="query: the whole text is a dictionary term; terms: terms inside it"
    )
    terms: list[ExpansionTerm]
    expansions: list[str] = Field(description="the texts encoded beside `text`")


EXPANSION_EXAMPLE: dict[str, Any] = {
    "text": "红色的圆形",
    "matched": "terms",
    "terms": [{"term": "红色", "expansion": "red"}, {"term": "圆形", "expansion": "circle"}],
    "expansions": ["red circle"],
}


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


_EXPANSIONS_FIELD_DESCRIPTION = "with expand: the expansions used ([] if none matched)"


class SearchResponse(BaseModel):
    hits: list[SearchHit]
    took_ms: float
    expansions: list[ExpansionOut] | None = Field(None, description=_EXPANSIONS_FIELD_DESCRIPTION)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"hits": [HIT_EXAMPLE], "took_ms": 12.5},
                {"hits": [HIT_EXAMPLE], "took_ms": 14.0, "expansions": [EXPANSION_EXAMPLE]},
            ]
        }
    )


class BatchResult(BaseModel):
    hits: list[SearchHit]
    expansions: list[ExpansionOut] | None = Field(None, description=_EXPANSIONS_FIELD_DESCRIPTION)


class BatchSearchResponse(BaseModel):
    results: list[BatchResult]
    took_ms: float

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"results": [{"hits": [HIT_EXAMPLE]}], "took_ms": 20.1}]}
    )


class ImageOut(BaseModel):
    id: str
    source: str = ""
    content_type: str = ""
    width: int = 0
    height: int = 0
    caption: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    metadata_omitted: str | None = Field(
        None, description="why the stored metadata is not shown (stored before the limits)"
    )
    created_at: int = 0
    image_url: str
    thumbnail_url: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_ID,
                    "source": "cat.jpg",
                    "content_type": "image/jpeg",
                    "width": 640,
                    "height": 480,
                    "caption": "a cat on a sofa",
                    "metadata": {"album": "home"},
                    "created_at": 1767225600,
                    "image_url": f"/v1/images/{EXAMPLE_ID}/file",
                    "thumbnail_url": f"/v1/images/{EXAMPLE_ID}/thumbnail",
                }
            ]
        }
    )


class DeletedOut(BaseModel):
    id: str
    deleted: bool = True
    texts_deleted: int = 0

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": EXAMPLE_ID, "deleted": True, "texts_deleted": 1}]}
    )
