"""The small search page at ``/`` (static HTML, its script and its style, shipped in the
package). The script and style are files rather than inline so the page's CSP needs no
``unsafe-inline`` (see :mod:`clipsearch.api.security`)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from clipsearch.core.errors import NotFoundError

router = APIRouter(include_in_schema=False)

_ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}


def _read(name: str) -> str:
    return resources.files("clipsearch").joinpath(f"web/{name}").read_text("utf-8")


@router.get("/")
async def index() -> HTMLResponse:
    """The page: search by text or by an uploaded image, results as thumbnails."""
    return HTMLResponse(_read("index.html"))


@router.get("/web/{name}")
async def asset(name: str) -> Response:
    """The page's script and style; any other name is a 404."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"no page asset {name!r}")
    return Response(_read(name), media_type=f"{media_type}; charset=utf-8")
