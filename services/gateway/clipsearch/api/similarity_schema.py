"""Request and response models of ``POST /v1/similarity``, with their OpenAPI examples."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clipsearch.api.schemas import EXAMPLE_ID


class SimilarityRequest(BaseModel):
    """The JSON form: one image (``image_base64`` or a stored ``image_id``) and the texts."""

    image_base64: str | None = Field(None, description="the image file, base64 (or data: URI)")
    image_id: str | None = Field(
        None, description="an image stored in ?collection=: its stored vector is used"
    )
    # Counted by the use-case (no_texts / too_many_texts), not here, so the refusal names it.
    texts: list[str] = Field(
        description="1..CLIPSEARCH_MAX_SIMILARITY_TEXTS texts, scored in this order"
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"image_id": EXAMPLE_ID, "texts": ["a red circle", "a blue square"]},
                {"image_base64": "iVBORw0KGgoAAAANSUhEUgAA...", "texts": ["a dog", "a cat"]},
            ]
        }
    )

    @model_validator(mode="after")
    def _one_image(self) -> SimilarityRequest:
        if (self.image_base64 is None) == (self.image_id is None):
            raise ValueError("give exactly one of image_base64 or image_id")
        return self


class TextScore(BaseModel):
    text: str = Field(description="the text, normalised (whitespace collapsed)")
    cosine: float = Field(description="cosine of image and text (clip-server: clip_score_cosine)")
    softmax: float = Field(
        description="softmax over the texts of 100 x cosine (clip-server: clip_score)"
    )


class SimilarityResponse(BaseModel):
    image_id: str = Field(description="the stored id, or the sha256 of the sent image")
    scores: list[TextScore] = Field(description="one per text, in request order")
    took_ms: float

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "image_id": EXAMPLE_ID,
                    "scores": [
                        {"text": "a red circle", "cosine": 0.3121, "softmax": 0.9933},
                        {"text": "a blue square", "cosine": 0.2620, "softmax": 0.0067},
                    ],
                    "took_ms": 14.2,
                }
            ]
        }
    )


# Both request forms in OpenAPI: a file upload with repeated ``texts`` fields, or JSON.
SIMILARITY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["texts"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "image_id": {"type": "string", "description": "instead of file"},
                        "texts": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
            "application/json": {
                "schema": SimilarityRequest.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                ),
                "examples": {
                    "by_id": {"value": {"image_id": EXAMPLE_ID, "texts": ["a dog", "a cat"]}},
                    "by_base64": {
                        "value": {"image_base64": "iVBORw0KGgo...", "texts": ["a red circle"]}
                    },
                },
            },
        },
    }
}
