"""FastAPI dependencies, typed as ``Annotated`` aliases: the app state (adapters and
use-cases), the ``?collection=`` every endpoint takes, and the one a write may create."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Query, Request

from clipsearch.api.auth import Principal, PrincipalDep
from clipsearch.api.state import AppState
from clipsearch.core.errors import Forbidden, UnknownCollection
from clipsearch.core.keys import Scope
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
    """403 ``collection_create_forbidden`` when a write would create a collection and the
    caller may not: only an admin *key* creates collections other than the default one,
    unless ``CLIPSEARCH_AUTO_CREATE_COLLECTIONS`` is set. With auth off there is no key, so
    anonymous writes cannot fill the disk with collections either (the setting opens it)."""
    cfg = state.settings
    if name == cfg.default_collection or cfg.auto_create_collections:
        return
    if principal.keyed and principal.allows(Scope.admin):
        return
    try:
        await state.collections.for_read(name)
    except UnknownCollection as exc:
        raise Forbidden(
            f"collection {name!r} does not exist and only an admin key creates collections "
            "(or set CLIPSEARCH_AUTO_CREATE_COLLECTIONS=true)",
            code="collection_create_forbidden",
        ) from exc


async def get_writable_collection(
    state: StateDep, principal: PrincipalDep, collection: CollectionDep
) -> str:
    await check_may_create(state, principal, collection)
    return collection


WritableCollectionDep = Annotated[str, Depends(get_writable_collection)]
