"""FastAPI dependencies, typed as ``Annotated`` aliases: the app state (adapters and
use-cases) and the ``?collection=`` every endpoint takes."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Query, Request

from clipsearch.api.state import AppState
from clipsearch.core.names import COLLECTION_PATTERN


def get_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.clipsearch)


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
CollectionDep = Annotated[str, Depends(get_collection)]
