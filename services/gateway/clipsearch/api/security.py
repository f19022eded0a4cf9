"""Browser-facing guards, installed together by :func:`install_access`.

* a ``Host`` allowlist against DNS rebinding (a page on ``evil.example`` whose name resolves
  to 127.0.0.1 sends ``Host: evil.example``);
* CORS from ``CLIPSEARCH_CORS_ORIGINS`` (none: same-origin only);
* a cross-site guard: an unsafe request whose ``Origin`` is neither this gateway nor an
  allowed CORS origin is refused with 403. A multipart POST is a "simple" request that needs
  no preflight, so CORS alone would let any page upload through a visitor's browser (and
  with no keys on loopback, the browser is all it takes);
* security headers on every response: a CSP fitted to the page (its script and style are
  files, so no ``unsafe-inline``), a looser one for the /docs and /redoc pages (they load
  Swagger UI / ReDoc from a CDN with inline bootstrapping), nosniff, no framing, no referrer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clipsearch.api.auth import ALWAYS_OPEN, Access, Authenticate
from clipsearch.api.errors import error_body, render
from clipsearch.core.config import Settings
from clipsearch.core.errors import Forbidden

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Swagger UI and ReDoc are served by the gateway (api/routes/docs.py): nothing from outside.
# Their HTML starts them with an inline script, hence 'unsafe-inline' on these pages only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; "
    "font-src 'self'; img-src 'self' data:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_DOCS_PAGES = ("/docs", "/redoc")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PROBES = frozenset({"/healthz", "/readyz"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _host_port(host: str, default_port: int = 0) -> tuple[str, int]:
    """``Host`` as (name, port); ``[::1]:8000`` -> (``::1``, 8000)."""
    h = host.strip().lower()
    if h.startswith("["):
        name, _, rest = h[1:].partition("]")
        port = rest.lstrip(":")
    elif h.count(":") == 1:
        name, port = h.split(":")
    else:
        name, port = h, ""
    return name, int(port) if port.isdigit() else default_port


class SecurityHeaders:
    """Adds the security headers to every response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        csp = DOCS_CSP if path.startswith(_DOCS_PAGES) else PAGE_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
            await send(message)

        await self.app(scope, receive, with_headers)


class HostAllowlist:
    """400 ``invalid_host`` unless ``Host`` is allowed (``*``, ``*.domain`` or a name), as
    Starlette's ``TrustedHostMiddleware`` does, but in the error shape, IPv6-aware, and with
    the probes exempt (an orchestrator's probe sends the pod's address as ``Host``)."""

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.any = "*" in allowed
        self.names = {a.lower() for a in allowed if not a.startswith("*.")}
        self.suffixes = tuple(a[1:].lower() for a in allowed if a.startswith("*."))

    def allows(self, host: str) -> bool:
        name = _host_port(host)[0]
        return self.any or name in self.names or any(name.endswith(s) for s in self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any or scope["path"] in _PROBES:
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host") or ""
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        body = error_body("invalid_host", "this Host is not served here (CLIPSEARCH_ALLOWED_HOSTS)")
        await JSONResponse(body, status_code=400)(scope, receive, send)


class CrossSiteGuard:
    """403 ``cross_site_request`` for an unsafe method whose ``Origin`` is another site.

    Requests without ``Origin`` (curl, the CLI, server-to-server) are not browsers' cross-site
    requests and pass; so do same-origin ones and those from an allowed CORS origin.
    """

    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app = app
        self.any = "*" in allowed_origins
        self.allowed = {o.rstrip("/").lower() for o in allowed_origins}

    def same_site(self, origin: str, host: str | None) -> bool:
        if self.any or origin.rstrip("/").lower() in self.allowed:
            return True
        parts = urlsplit(origin.lower())
        default = _DEFAULT_PORTS.get(parts.scheme)
        if default is None or not parts.hostname or host is None:
            return False  # "null" (sandboxed frames, file://) and garbage
        try:
            port = parts.port or default
        except ValueError:
            return False
        return (parts.hostname, port) == _host_port(host, default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _UNSAFE:
            origin = _header(scope, b"origin")
            if origin is not None and not self.same_site(origin, _header(scope, b"host")):
                refusal = Forbidden(
                    "cross-site request refused: this Origin is not allowed "
                    "(CLIPSEARCH_CORS_ORIGINS)",
                    code="cross_site_request",
                )
                await render(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def document_security(app: FastAPI) -> None:
    """Name both key headers in the OpenAPI document (so /docs has an Authorize button);
    the open paths say they need none."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        spec.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
        for path in ALWAYS_OPEN:
            for operation in spec.get("paths", {}).get(path, {}).values():
                operation["security"] = []
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def install_access(app: FastAPI, cfg: Settings, access: Access) -> None:
    """Add the access middleware; outermost first: headers, Host, CORS, cross-site, keys.

    CORS sits outside the key check so that a preflight (which carries no key) is answered,
    and so that a 401 still carries the CORS headers a page needs to read it.
    """
    app.add_middleware(Authenticate, access=access)
    app.add_middleware(CrossSiteGuard, allowed_origins=cfg.cors_origins)
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cfg.cors_origins,
            allow_credentials=cfg.cors_allow_credentials,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    app.add_middleware(HostAllowlist, allowed=cfg.resolved_allowed_hosts)
    app.add_middleware(SecurityHeaders)
    document_security(app)
