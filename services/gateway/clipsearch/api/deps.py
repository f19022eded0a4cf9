"""FastAPI dependencies, typed as ``Annotated`` aliases: the app state (adapters and
use-cases), the ``?collection=`` every endpoint takes, and the one a write may create."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Query, Request

from clipsearch.api.auth import Principal, PrincipalDep
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


async def check_may_create(state: AppState, principal: Principal, name: str) -> None:
    """404 ``unknown_collection`` (saying how to create it) when a write names a collection
    that does not exist and may not be created by a write: only the default collection is,
    unless ``CLIPSEARCH_AUTO_CREATE_COLLECTIONS`` is set (then any writer's write creates
    it). Others are created with ``PUT /v1/collections/{name}`` (admin), so with no keys
    anonymous writes cannot fill the disk with collections either."""
    await state.collections.check_writable(name)


async def get_writable_collection(
    state: StateDep, principal: PrincipalDep, collection: CollectionDep
) -> str:
    await check_may_create(state, principal, collection)
    return collection


WritableCollectionDep = Annotated[str, Depends(get_writable_collection)]
