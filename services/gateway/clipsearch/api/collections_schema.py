"""Request and response models of ``/v1/collections``, with the examples shown in OpenAPI."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from clipsearch.usecases.collections import CollectionView

FINGERPRINT = "a011b80f592e2ff1bfdc6bcadf298e2f8863df7e124c690dc24f77562ebad2c8"


class IndexIn(BaseModel):
    """How the collection's vectors are indexed (default: the server's settings)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["HNSW", "FLAT"] = "HNSW"
    params: dict[str, StrictInt] = Field(
        default_factory=dict,
        description="HNSW: `M` (4-64), `efConstruction` (8-2048); FLAT: none",
        examples=[{"M": 16, "efConstruction": 200}],
    )


class CollectionPut(BaseModel):
    """``PUT /v1/collections/{name}``: both optional."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model": "shapes-tiny", "index": {"type": "HNSW", "params": {"M": 16}}},
                {"index": {"type": "FLAT"}},
            ]
        },
    )

    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="a configured model (main or CLIPSEARCH_EXTRA_MODELS) by name or "
        "fingerprint; default: the main model",
    )
    index: IndexIn | None = None


class MigrateIn(BaseModel):
    """``POST /v1/collections/{name}/migrate``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"model": "shapes-tiny-v2"}]}
    )

    model: str = Field(min_length=1, max_length=256, description="the configured model to move to")


class ThresholdIn(BaseModel):
    """``PUT /v1/collections/{name}/threshold``: what ``min_score: "auto"`` means."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"min_score": 0.27, "model_fingerprint": FINGERPRINT},
                {"min_score": None},
            ]
        },
    )

    min_score: float | None = Field(
        ge=-1.0,
        le=1.0,
        description="the cosine a hit must reach (null: remove the stored threshold)",
    )
    model_fingerprint: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="the model the threshold was computed with: refused (409 model_mismatch) "
        "unless it is the collection's model",
    )


class MigrationOut(BaseModel):
    model_name: str
    fingerprint: str
    dim: int


class CollectionOut(BaseModel):
    name: str
    model_name: str
    fingerprint: str
    dim: int
    index_type: str
    index_params: dict[str, Any]
    counts: dict[str, int]
    created_at: int = Field(description="unix seconds")
    servable: bool = Field(description="whether this gateway has the collection's model")
    reason: str | None = Field(default=None, description="why it is not servable")
    migration: MigrationOut | None = Field(
        default=None, description="the model a running migration is moving it to"
    )
    min_score_auto: float | None = Field(
        default=None, description='the threshold min_score "auto" uses (null: none stored)'
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "default",
                    "model_name": "shapes-tiny",
                    "fingerprint": FINGERPRINT,
                    "dim": 128,
                    "index_type": "HNSW",
                    "index_params": {"M": 16, "efConstruction": 200, "metric_type": "COSINE"},
                    "counts": {"images": 120, "texts": 240},
                    "created_at": 1764633600,
                    "servable": True,
                    "reason": None,
                    "migration": None,
                    "min_score_auto": 0.27,
                }
            ]
        }
    )

    @classmethod
    def of(cls, view: CollectionView) -> CollectionOut:
        migration = MigrationOut(**view.migration) if view.migration else None
        return cls(
            name=view.name,
            model_name=view.model_name,
            fingerprint=view.fingerprint,
            dim=view.dim,
            index_type=view.index_type,
            index_params=view.index_params,
            counts=view.counts,
            created_at=view.created_at,
            servable=view.servable,
            reason=view.reason,
            migration=migration,
            min_score_auto=view.min_score_auto,
        )


class CollectionList(BaseModel):
    collections: list[CollectionOut]


class CollectionDeleted(BaseModel):
    name: str
    deleted: bool = True
    images: int = Field(description="images the collection held")
    blobs_removed: int = Field(description="originals no other collection referenced")
    jobs_cancelled: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "team",
                    "deleted": True,
                    "images": 120,
                    "blobs_removed": 118,
                    "jobs_cancelled": 1,
                }
            ]
        }
    )
