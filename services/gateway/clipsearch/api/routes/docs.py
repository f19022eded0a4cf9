"""``/docs`` (Swagger UI) and ``/redoc`` that work offline: their script, style and icon come
from the ``fastapi-offline`` package's data and are served here, under ``/docs/assets/``, so
the pages load nothing from a CDN (FastAPI's defaults point at jsDelivr and Google Fonts)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from fastapi import APIRouter
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

from clipsearch.core.errors import NotFoundError

router = APIRouter(include_in_schema=False)

ASSETS_PREFIX = "/docs/assets/"
OPENAPI_URL = "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
_PACKAGE = "fastapi_offline"  # ships swagger-ui-dist and redoc's standalone bundle
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_TITLE = "clipsearch"


@lru_cache(maxsize=len(_ASSETS))
def _asset_bytes(name: str) -> bytes:
    return resources.files(_PACKAGE).joinpath(f"static/{name}").read_bytes()


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    """Swagger UI over ``/openapi.json``, every asset from this gateway."""
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{_TITLE} - Swagger UI",
        swagger_js_url=f"{ASSETS_PREFIX}swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PREFIX}swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PREFIX}favicon.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        # validatorUrl null: no badge fetched from validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page (static, no asset)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    """ReDoc over ``/openapi.json``, without Google Fonts."""
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{_TITLE} - ReDoc",
        redoc_js_url=f"{ASSETS_PREFIX}redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_PREFIX}favicon.png",
        with_google_fonts=False,
    )


@router.get(ASSETS_PREFIX + "{name}")
async def asset(name: str) -> Response:
    """The docs pages' script, style and icon; any other name is a 404."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise NotFoundError(f"no docs asset {name!r}")
    return Response(
        _asset_bytes(name),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
