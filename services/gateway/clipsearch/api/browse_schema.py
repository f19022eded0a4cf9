"""Response models of browsing (``GET /v1/images``, ``GET /v1/texts``) and of deleting
by filter, with their OpenAPI examples."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from clipsearch.api.records_schema import ImageOut, TextOut
from clipsearch.api.schemas import EXAMPLE_ID

EXAMPLE_CURSOR = "eyJ2IjoxLCJ0IjoiaW1hZ2VzIiwiYSI6IjlmODZkMDgxIn0"
FILTER_DESCRIPTION = (
    'metadata filter as a JSON object, URL-encoded: {"album": "home"}, '
    '{"tag": ["a", "b"]} (any of), all fields must match'
)


class _Page(BaseModel):
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null on the last page"
    )
    total: int | None = Field(
        description="records in the collection (null when a filter is given: not cheap)"
    )


class ImagePage(_Page):
    items: list[ImageOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [ImageOut.model_config["json_schema_extra"]["examples"][0]],  # type: ignore[index]
                    "next_cursor": EXAMPLE_CURSOR,
                    "total": 1250,
                }
            ]
        }
    )


class TextPage(_Page):
    items: list[TextOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": EXAMPLE_ID,
                            "text": "a cat on a sofa",
                            "image_id": EXAMPLE_ID,
                            "metadata": {"lang": "en"},
                            "created_at": 1767225600,
                            "image_url": f"/v1/images/{EXAMPLE_ID}/file",
                            "thumbnail_url": f"/v1/images/{EXAMPLE_ID}/thumbnail",
                        }
                    ],
                    "next_cursor": None,
                    "total": 1,
                }
            ]
        }
    )


class DeletedByFilter(BaseModel):
    deleted: int = Field(description="pictures deleted")
    texts_deleted: int = Field(0, description="texts linked to them (captions) deleted")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"deleted": 42, "texts_deleted": 40}]}
    )
