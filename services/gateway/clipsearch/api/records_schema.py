"""Stored records as the API shows them (an image, a text, a deletion) and the bodies that
change them (``PATCH /v1/images/{id}``, ``PATCH /v1/texts/{id}``), with their OpenAPI
examples. Browse pages (:mod:`.browse_schema`) and search hits list these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clipsearch.api.schemas import EXAMPLE_ID


class ImageOut(BaseModel):
    id: str
    source: str = ""
    content_type: str = ""
    width: int = 0
    height: int = 0
    caption: str = Field("", description="the main caption")
    captions: list[str] = Field(
        default_factory=list, description="every caption text linked to the image, main first"
    )
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
                    "captions": ["a cat on a sofa", "a sleeping tabby"],
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


MetadataModeField = Literal["merge", "replace"]
_MODE_DESCRIPTION = (
    "merge (default): the given top-level keys replace theirs, the others stay; "
    "replace: the given object becomes the whole metadata"
)


class ImagePatchIn(BaseModel):
    """``PATCH /v1/images/{id}``: every part optional, at least one, applied together."""

    metadata: dict[str, Any] | None = Field(None, description="metadata to merge or replace")
    metadata_mode: MetadataModeField = Field("merge", description=_MODE_DESCRIPTION)
    caption: str | None = Field(
        None, description="the new main caption (the previous main caption text is removed)"
    )
    add_captions: list[str] = Field(default_factory=list, description="more caption texts")
    remove_captions: list[str] = Field(default_factory=list, description="caption texts to delete")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"metadata": {"album": "holidays", "year": 2024}},
                {
                    "caption": "a cat asleep on a red sofa",
                    "add_captions": ["a sleeping tabby"],
                    "remove_captions": ["a cat on a sofa"],
                },
                {"metadata": {"album": "home"}, "metadata_mode": "replace"},
            ]
        },
    )


class TextPatchIn(BaseModel):
    """``PATCH /v1/texts/{id}``: a new text (a new vector and id) and/or metadata."""

    text: str | None = Field(None, description="the new text: encoded again, gets a new id")
    metadata: dict[str, Any] | None = Field(None, description="metadata to merge or replace")
    metadata_mode: MetadataModeField = Field("merge", description=_MODE_DESCRIPTION)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"metadata": {"lang": "en"}},
                {"text": "a red circle on the left", "metadata": {"checked": True}},
            ]
        },
    )


class TextOut(BaseModel):
    """A stored text: browsed (``GET /v1/texts``) or changed (``PATCH /v1/texts/{id}``)."""

    id: str = Field(description="the text's id now (a new text has a new id)")
    text: str
    image_id: str | None = Field(None, description="the image the text describes (captions)")
    metadata: dict[str, Any] = Field(default_factory=dict)
    metadata_omitted: str | None = Field(
        None, description="why the stored metadata is not shown (stored before the limits)"
    )
    created_at: int = 0
    image_url: str | None = Field(None, description="the linked image's file, if any")
    thumbnail_url: str | None = Field(None, description="the linked image's thumbnail, if any")
    replaced_id: str | None = Field(
        None, description="the id the text had before, when a new text changed it (PATCH)"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_ID,
                    "text": "a red circle on the left",
                    "image_id": None,
                    "metadata": {"lang": "en"},
                    "created_at": 1767225600,
                    "replaced_id": EXAMPLE_ID[::-1],
                }
            ]
        }
    )
