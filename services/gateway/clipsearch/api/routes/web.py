"""The small search page at ``/`` (static HTML + JS shipped in the package)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> HTMLResponse:
    """The page: search by text or by an uploaded image, results as thumbnails."""
    html = resources.files("clipsearch").joinpath("web/index.html").read_text("utf-8")
    return HTMLResponse(html)
