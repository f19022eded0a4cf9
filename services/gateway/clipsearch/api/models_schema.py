"""Response model of ``GET /v1/models``, with the example shown in OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clipsearch.usecases.models import ModelsReport, ModelView


class ModelOut(BaseModel):
    """One model: where it comes from, its layout, dim, languages and score kind."""

    name: str
    source: str | None = Field(
        description="clip-as-service, huggingface, clip-server (service only) or local folder"
    )
    layout: str | None = Field(description="clip-server or immich (None: the server's)")
    dim: int | None = Field(description="embedding size (None: not known before loading)")
    languages: list[str] | None = Field(
        description="ISO 639-1 codes, or 'multilingual' (None: not known)"
    )
    score: str | None = Field(description="cosine (CLIP) or sigmoid (SigLIP)")
    modes: list[str] = Field(description="encoder modes that serve it: local, service")
    folder: str | None = Field(default=None, description="its folder (admin keys only)")
    loaded: bool | None = None
    fingerprint: str | None = None

    @classmethod
    def of(cls, view: ModelView, *, show_folder: bool) -> ModelOut:
        out = cls(**view.__dict__)
        return out if show_folder else out.model_copy(update={"folder": None})


_CONFIGURED: dict[str, Any] = {
    "name": "immich-app/XLM-Roberta-Large-Vit-B-16Plus",
    "source": "huggingface",
    "layout": "immich",
    "dim": 640,
    "languages": ["multilingual"],
    "score": "cosine",
    "modes": ["local"],
    "folder": None,
    "loaded": True,
    "fingerprint": "5f0c...",
}


class ModelsOut(BaseModel):
    """The configured model, the model folders in the cache and the catalog of names."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mode": "local",
                    "configured": _CONFIGURED,
                    "cached": [{**_CONFIGURED, "loaded": None, "fingerprint": None}],
                    "catalog": [
                        {
                            "name": "ViT-B-32::openai",
                            "source": "clip-as-service",
                            "layout": "clip-server",
                            "dim": 512,
                            "languages": ["en"],
                            "score": "cosine",
                            "modes": ["local", "service"],
                        },
                        {
                            "name": "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus",
                            "source": "clip-server",
                            "layout": "clip-server",
                            "dim": 640,
                            "languages": ["multilingual"],
                            "score": "cosine",
                            "modes": ["service"],
                        },
                    ],
                }
            ]
        }
    )

    mode: str = Field(description="the encoder mode: local or service")
    configured: ModelOut
    cached: list[ModelOut]
    catalog: list[ModelOut]

    @classmethod
    def of(cls, report: ModelsReport, *, show_folders: bool) -> ModelsOut:
        return cls(
            mode=report.mode,
            configured=ModelOut.of(report.configured, show_folder=show_folders),
            cached=[ModelOut.of(v, show_folder=show_folders) for v in report.cached],
            catalog=[ModelOut.of(v, show_folder=show_folders) for v in report.catalog],
        )
