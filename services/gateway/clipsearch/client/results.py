"""The typed results of :mod:`clipsearch.client`: the gateway's JSON bodies as
:class:`~typing.TypedDict` (plain dicts at run time), mirroring ``api/schemas.py`` and
``api/jobs_schema.py``."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Target = Literal["images", "texts"]
ItemStatus = Literal["stored", "duplicate", "failed"]


class SearchOptions(TypedDict, total=False):
    """What every search takes besides its query; left out, the gateway's default."""

    target: Target  # images (default) or texts
    top_k: int
    offset: int
    min_score: float
    filter: dict[str, Any]  # {"field": value | [values]} over the stored metadata


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


class HitList(TypedDict):
    hits: list[Hit]


class BatchResult(TypedDict):
    results: list[HitList]
    took_ms: float


class ImageInfo(TypedDict):
    id: str
    source: str
    content_type: str
    width: int
    height: int
    caption: str
    metadata: dict[str, Any]
    created_at: int
    image_url: str
    thumbnail_url: str


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
