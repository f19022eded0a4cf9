"""The web app at ``/``: a small single-page app (hash routes for search, library, ingest
and stats) in plain HTML, CSS and ES modules shipped in the package (``clipsearch/web/``),
no build step and nothing from outside. Scripts and style are files rather than inline so
the page's CSP needs no ``unsafe-inline`` (see :mod:`clipsearch.api.security`)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from clipsearch.core.errors import NotFoundError

router = APIRouter(include_in_schema=False)

_TYPES = {"js": "text/javascript", "css": "text/css"}
# A flat name with a known type: nothing else under web/ (index.html, a path) is served.
_ASSET_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,40}\.(js|css)$")


@lru_cache(maxsize=32)
def _read(name: str) -> str | None:
    path = resources.files("clipsearch").joinpath(f"web/{name}")
    return path.read_text("utf-8") if path.is_file() else None


@router.get("/")
async def index() -> HTMLResponse:
    """The app's page; its views are drawn by ``/web/app.js``."""
    return HTMLResponse(_read("index.html") or "")


@router.get("/web/{name}")
async def asset(name: str) -> Response:
    """The app's scripts (ES modules) and style; any other name is a 404."""
    match = _ASSET_NAME.match(name)
    text = _read(name) if match else None
    if match is None or text is None:
        raise NotFoundError(f"no page asset {name!r}")
    return Response(text, media_type=f"{_TYPES[match.group(1)]}; charset=utf-8")
