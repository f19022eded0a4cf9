"""The typed results of :mod:`clipsearch.client`: the gateway's JSON bodies as
:class:`~typing.TypedDict` (plain dicts at run time), mirroring ``api/schemas.py`` and
``api/jobs_schema.py``."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Target = Literal["images", "texts"]
ItemStatus = Literal["stored", "updated", "duplicate", "failed"]


class SearchOptions(TypedDict, total=False):
    """What every search takes besides its query; left out, the gateway's default."""

    target: Target  # images (default) or texts
    top_k: int
    offset: int
    min_score: float | Literal["auto"]  # "auto": the collection's stored threshold
    filter: dict[str, Any]  # {"field": value | [values]} over the stored metadata
    rerank: bool  # re-score the page: rerank_score (softmax) and rerank_cosine on each hit


class ItemError(TypedDict):
    code: str
    message: str


class StoredItem(TypedDict):
    """One uploaded file or text: ``id`` is the sha256 of its bytes (None if it failed)."""

    id: str | None
    source: str
    status: ItemStatus
    error: ItemError | None


class Hit(TypedDict):
    id: str
    score: float
    caption: str | None
    text: str | None
    image_id: str | None
    source: str | None
    metadata: dict[str, Any]
    image_url: str | None
    thumbnail_url: str | None
    rerank_score: float | None  # with rerank: softmax over the page (clip_score)
    rerank_cosine: float | None  # with rerank: the cosine as re-scored


class ExpansionUsed(TypedDict):
    text: str
    matched: Literal["query", "terms"]
    terms: list[dict[str, str]]
    expansions: list[str]


class SearchResult(TypedDict):
    hits: list[Hit]
    took_ms: float
    # With expand: the expansions used (null otherwise).
    expansions: NotRequired[list[ExpansionUsed] | None]
    # With min_score "auto": true when no hit cleared the collection's threshold.
    no_match: NotRequired[bool | None]


class DuplicateGroup(TypedDict):
    """Near-identical images: the reference first, every score is cosine to it."""

    size: int
    members: list[Hit]


class Duplicates(TypedDict):
    """One page of ``/duplicates``: follow ``next_cursor`` until it is None."""

    groups: list[DuplicateGroup]
    scanned: int
    next_cursor: str | None
    took_ms: float


class HitList(TypedDict):
    hits: list[Hit]
    no_match: NotRequired[bool | None]  # as in SearchResult


class BatchResult(TypedDict):
    results: list[HitList]
    took_ms: float


class TextScore(TypedDict):
    text: str
    cosine: float  # clip-server's clip_score_cosine
    softmax: float  # clip-server's clip_score: over the texts, logit scale 100


class Similarity(TypedDict):
    image_id: str
    scores: list[TextScore]
    took_ms: float


class ImageInfo(TypedDict):
    id: str
    source: str
    content_type: str
    width: int
    height: int
    caption: str
    captions: list[str]  # every caption text of the image, main first
    metadata: dict[str, Any]
    created_at: int
    image_url: str
    thumbnail_url: str


class TextInfo(TypedDict):
    id: str  # the id now: a new text has a new one
    text: str
    image_id: str | None
    metadata: dict[str, Any]
    created_at: int
    replaced_id: str | None


class Deleted(TypedDict):
    id: str
    deleted: bool
    texts_deleted: int


class JobAccepted(TypedDict):
    job_id: str
    status: str
    total: int
    existing: bool
    url: str


class JobCounts(TypedDict):
    total: int
    stored: int
    updated: int
    duplicate: int
    failed: int
    pending: int


class JobItem(TypedDict):
    source: str
    id: str | None
    status: str
    error: str | None


class JobView(TypedDict):
    job_id: str
    status: str
    collection: str
    counts: JobCounts
    rate: float
    eta_s: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    items: list[JobItem] | None
    offset: int
    limit: int
    next_offset: int | None


class Page(TypedDict):
    """A page of ``GET /v1/images`` / ``/v1/texts``: records as ``get_image`` shows them."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    total: int | None


class MigrationInfo(TypedDict):
    model_name: str
    fingerprint: str
    dim: int


class CollectionInfo(TypedDict):
    """``GET /v1/collections/{name}``: the collection's model, index, counts."""

    name: str
    model_name: str
    fingerprint: str
    dim: int
    index_type: str
    index_params: dict[str, Any]
    counts: dict[str, int]
    created_at: int
    servable: bool
    reason: str | None
    migration: MigrationInfo | None
    min_score_auto: NotRequired[float | None]  # the stored "auto" threshold, if any


class CollectionDeleted(TypedDict):
    name: str
    deleted: bool
    images: int
    blobs_removed: int
    jobs_cancelled: int
