"""FastAPI dependencies: the app's adapters and use-cases, typed as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Query, Request

from clipsearch.api.state import AppState
from clipsearch.core.config import Settings
from clipsearch.core.names import COLLECTION_PATTERN
from clipsearch.encoder.protocol import Encoder
from clipsearch.store.protocol import VectorStore


def get_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.clipsearch)


def get_settings_dep(state: Annotated[AppState, Depends(get_state)]) -> Settings:
    return state.settings


def get_encoder(state: Annotated[AppState, Depends(get_state)]) -> Encoder:
    return state.encoder


def get_store(state: Annotated[AppState, Depends(get_state)]) -> VectorStore:
    return state.store


def get_collection(
    state: Annotated[AppState, Depends(get_state)],
    collection: Annotated[
        str | None,
        Query(
            description="collection group (default: the configured default collection)",
            pattern=COLLECTION_PATTERN,
            examples=["default"],
        ),
    ] = None,
) -> str:
    return collection or state.settings.default_collection


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EncoderDep = Annotated[Encoder, Depends(get_encoder)]
StoreDep = Annotated[VectorStore, Depends(get_store)]
CollectionDep = Annotated[str, Depends(get_collection)]
