"""Helpers shared by the /v1 routes: URLs, hit rendering, item results."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from clipsearch.api.records_schema import ImageOut
from clipsearch.api.schemas import ItemError, SearchHit, StoredItem
from clipsearch.store.protocol import Hit, Target
from clipsearch.usecases.images import ItemResult
from clipsearch.usecases.metadata import readable_metadata


def image_urls(image_id: str, collection: str, default: str) -> tuple[str, str]:
    """Root-relative URLs of an image's file and thumbnail (collection kept if not default)."""
    suffix = "" if collection == default else f"?collection={quote(collection)}"
    base = f"/v1/images/{quote(image_id)}"
    return f"{base}/file{suffix}", f"{base}/thumbnail{suffix}"


def render_hit(hit: Hit, target: Target, collection: str, default: str) -> SearchHit:
    f: dict[str, Any] = hit.fields
    # A record stored before the metadata limits must not break the whole search.
    metadata, omitted = readable_metadata(f.get("metadata"))
    if target == "images":
        img_url, img_thumb = image_urls(hit.id, collection, default)
        return SearchHit(
            id=hit.id,
            score=hit.score,
            caption=f.get("caption", ""),
            source=f.get("source", ""),
            metadata=metadata,
            metadata_omitted=omitted,
            image_url=img_url,
            thumbnail_url=img_thumb,
        )
    image_id = f.get("image_id") or None
    file_url: str | None = None
    thumb_url: str | None = None
    if image_id:
        file_url, thumb_url = image_urls(image_id, collection, default)
    return SearchHit(
        id=hit.id,
        score=hit.score,
        text=f.get("text", ""),
        image_id=image_id,
        source=f.get("source") or None,
        metadata=metadata,
        metadata_omitted=omitted,
        image_url=file_url,
        thumbnail_url=thumb_url,
    )


def render_image(row: dict[str, Any], collection: str, default: str) -> ImageOut:
    """A stored image row as ``GET /v1/images/{id}`` shows it."""
    file_url, thumb_url = image_urls(str(row["id"]), collection, default)
    fields = {k: v for k, v in row.items() if k in ImageOut.model_fields and v is not None}
    # A record stored before the metadata limits is still returned, without its metadata.
    fields["metadata"], fields["metadata_omitted"] = readable_metadata(row.get("metadata"))
    return ImageOut(**fields, image_url=file_url, thumbnail_url=thumb_url)


def render_item(r: ItemResult) -> StoredItem:
    err = ItemError(code=r.error.code, message=r.error.message) if r.error else None
    return StoredItem(id=r.id, source=r.source, status=r.status, error=err)
