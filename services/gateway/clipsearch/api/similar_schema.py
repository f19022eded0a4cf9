"""Response models of the near-duplicate routes (``/similar`` answers a ``SearchResponse``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clipsearch.api.schemas import EXAMPLE_ID, HIT_EXAMPLE, SearchHit

COPY_ID = "3c2f0e8a41b7d6c95e04f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6"
GROUP_EXAMPLE: dict[str, Any] = {
    "size": 2,
    "members": [
        {**HIT_EXAMPLE, "score": 1.0},
        {
            **HIT_EXAMPLE,
            "id": COPY_ID,
            "score": 0.987,
            "source": "shape_0001_small.jpg",
            "image_url": f"/v1/images/{COPY_ID}/file",
            "thumbnail_url": f"/v1/images/{COPY_ID}/thumbnail",
        },
    ],
}


class DuplicateGroupOut(BaseModel):
    size: int = Field(description="how many images the group holds")
    members: list[SearchHit] = Field(
        description="the reference image first (most pixels, then earliest stored), then "
        "the others, each with its cosine score to the reference"
    )


class DuplicatesResponse(BaseModel):
    groups: list[DuplicateGroupOut] = Field(description="largest first")
    scanned: int = Field(description="images this page scanned")
    next_cursor: str | None = Field(
        None, description="pass as ?cursor= for the next page; null: the scan is complete"
    )
    took_ms: float

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "groups": [GROUP_EXAMPLE],
                    "scanned": 10000,
                    "next_cursor": EXAMPLE_ID,
                    "took_ms": 8120.5,
                }
            ]
        }
    )
