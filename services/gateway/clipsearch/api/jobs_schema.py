"""Request and response models of the ingest/jobs API, with their OpenAPI examples."""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field

from clipsearch.api.json_body import parse_json_field
from clipsearch.core.names import COLLECTION_PATTERN
from clipsearch.core.redact import hide_path, redact_credentials
from clipsearch.jobs.store import Item, Job
from clipsearch.jobs.submit import IngestRequest, Located
from clipsearch.jobs.uploads import ParsedUpload

Location = Annotated[str, Field(min_length=1, max_length=4096)]


class UrlItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Location
    caption: str | list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class PathItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Location
    caption: str | list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class IngestBody(BaseModel):
    """JSON form of ``POST /v1/ingest`` (URLs and server paths; uploads need multipart)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "urls": ["https://images.example/cat.jpg",
                             {"url": "https://images.example/dog.png", "caption": "a dog"}],
                    "paths": ["photos/2024"],
                    "captions": {"photos/2024/a.jpg": "a red circle"},
                    "metadata": {"batch": "spring"},
                    "collection": "default",
                }
            ]
        },
    )  # fmt: skip
    # Plain strings get the same length limits as the objects' url/path (unbounded, an
    # empty or 5,000-character URL reached the job store).
    urls: list[Location | UrlItem] = Field(default_factory=list, max_length=100_000)
    paths: list[Location | PathItem] = Field(default_factory=list, max_length=10_000)
    captions: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    collection: str | None = Field(default=None, pattern=COLLECTION_PATTERN)


def caption_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def request_from_json(body: IngestBody) -> IngestRequest:
    """The use-case's request from the JSON form."""

    def located(item: UrlItem | PathItem, where: str) -> Located:
        return Located(where, caption_list(item.caption), item.metadata)

    return IngestRequest(
        urls=[Located(u) if isinstance(u, str) else located(u, u.url) for u in body.urls],
        paths=[Located(p) if isinstance(p, str) else located(p, p.path) for p in body.paths],
        caption_map=dict(body.captions),
        metadata=body.metadata,
        collection=body.collection,
    )


def request_from_form(form: ParsedUpload) -> IngestRequest:
    """Form fields: ``urls``/``paths`` one per line (field repeatable), ``captions`` one
    per file in order, ``metadata`` a JSON object, ``collection`` a name."""
    f = form.fields

    def lines(name: str) -> list[str]:
        return [ln.strip() for v in f.get(name, []) for ln in v.splitlines() if ln.strip()]

    metadata: dict[str, Any] = {}
    if f.get("metadata"):
        metadata = parse_json_field(f["metadata"][-1], what="metadata", code="invalid_metadata")
        if not isinstance(metadata, dict):
            raise ValueError("metadata must be a JSON object")
    collection = f.get("collection", [None])[-1]
    if collection is not None:
        IngestBody(collection=collection)  # validates the name
    for u in lines("urls"):  # the same length limits as the JSON form
        UrlItem(url=u)
    for p in lines("paths"):
        PathItem(path=p)
    return IngestRequest(
        files=form.files,
        file_captions=f.get("captions", []),
        urls=[Located(u) for u in lines("urls")],
        paths=[Located(p) for p in lines("paths")],
        captions_file=form.captions_file,
        metadata=metadata,
        collection=collection,
    )


class JobAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"job_id": "3f2a9c", "status": "queued", "total": 500,
                                         "existing": False, "url": "/v1/jobs/3f2a9c"}]}
    )  # fmt: skip
    job_id: str
    status: str
    total: int
    existing: bool = False
    url: str

    @classmethod
    def of(cls, job: Job, *, existing: bool = False) -> JobAccepted:
        return cls(job_id=job.id, status=job.status, total=job.total, existing=existing,
                   url=f"/v1/jobs/{job.id}")  # fmt: skip


class Counts(BaseModel):
    total: int
    stored: int
    updated: int = Field(0, description="already stored; got the item's caption or metadata")
    duplicate: int
    failed: int
    pending: int


class ItemView(BaseModel):
    source: str
    id: str | None
    status: str
    error: str | None


class JobView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"job_id": "3f2a9c", "status": "running", "collection": "default",
                 "counts": {"total": 500, "stored": 120, "duplicate": 3, "failed": 1,
                            "pending": 376},
                 "rate": 41.5, "eta_s": 9.1, "created_at": 1760000000.0,
                 "started_at": 1760000001.0, "finished_at": None, "error": None,
                 "items": [{"source": "cat.jpg", "id": "9b1e…", "status": "stored",
                            "error": None}],
                 "offset": 0, "limit": 100, "next_offset": 100}
            ]
        }
    )  # fmt: skip
    job_id: str
    kind: str = Field(default="ingest", description="`ingest`, or `migrate` (a collection "
                      "moving to another model: one item per image and text)")  # fmt: skip
    status: str
    collection: str
    counts: Counts
    rate: float = Field(description="items finished per second (this run)")
    eta_s: float | None = Field(description="seconds left at the current rate")
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None = Field(
        description="why the job failed; while running, a note such as "
        "'waiting for the encoder (unavailable since ...)'"
    )
    items: list[ItemView] | None = None
    offset: int = 0
    limit: int = 0
    next_offset: int | None = None


class JobList(BaseModel):
    jobs: list[JobView]


def item_view(item: Item, *, reveal_paths: bool) -> ItemView:
    """An item as a client sees it: never a URL's credentials, and a server path only to an
    admin (others get the file name, in ``source`` and in the error message alike)."""
    view = item.public()
    if item.kind == "path" and not reveal_paths:
        view["source"] = hide_path(item.source, item.source)
        if view["error"]:
            view["error"] = hide_path(view["error"], item.source)
    view["source"] = redact_credentials(view["source"])
    if view["error"]:
        view["error"] = redact_credentials(view["error"])
    return ItemView(**view)


def job_view(
    job: Job, rate_eta: tuple[float, float | None], items: list[Item] | None, offset: int,
    limit: int, *, reveal_paths: bool = False,
) -> JobView:  # fmt: skip
    c = job.counts
    more = items is not None and limit > 0 and len(items) == limit
    return JobView(
        job_id=job.id,
        kind=job.kind,
        status=job.status,
        collection=job.collection,
        counts=Counts(
            total=job.total,
            stored=c.get("stored", 0),
            updated=c.get("updated", 0),
            duplicate=c.get("duplicate", 0),
            failed=c.get("failed", 0),
            pending=c.get("pending", 0),
        ),
        rate=round(rate_eta[0], 2),
        eta_s=None if rate_eta[1] is None else round(rate_eta[1], 1),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=None if job.error is None else redact_credentials(job.error),
        items=None if items is None else [item_view(i, reveal_paths=reveal_paths) for i in items],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
    )


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its ``$defs`` references replaced by the definitions themselves
    (OpenAPI would look for ``#/$defs`` at the document root)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return cast(dict[str, Any], walk(schema))


INGEST_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "captions": {"type": "array", "items": {"type": "string"},
                                     "description": "one per file, in order"},
                        "captions_file": {"type": "string", "format": "binary",
                                          "description": "captions.csv or Flickr *.token"},
                        "urls": {"type": "string", "description": "one URL per line"},
                        "paths": {"type": "string", "description": "one path per line"},
                        "metadata": {"type": "string", "description": "JSON object"},
                        "collection": {"type": "string"},
                    },
                },
                "example": {"captions": ["a red circle"], "metadata": '{"batch": "spring"}',
                            "urls": "https://images.example/cat.jpg"},
            },
            "application/json": {
                "schema": _inline(IngestBody.model_json_schema()),
                "example": IngestBody.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
            },
        },
    }
}  # fmt: skip
