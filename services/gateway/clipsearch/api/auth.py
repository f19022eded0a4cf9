"""Who is calling: API keys checked on every request, scopes required per route, rate limits.

:class:`Authenticate` (ASGI middleware) runs before any body is read. With keys configured,
every path but the open ones needs a valid key (``Authorization: Bearer`` or ``X-API-Key``):
401 without one, and the :class:`Principal` it names is put in the request scope. Routes ask
for more than ``read`` with ``dependencies=[RequireWrite]`` and read the caller with
:data:`PrincipalDep`. With auth off (no keys on loopback, or ``CLIPSEARCH_AUTH=off``) every
caller is the :data:`OWNER`, allowed everything, as before keys existed.

The presented key is never logged nor put in a message; the key ring holds only hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from clipsearch.api.errors import render
from clipsearch.core import keys
from clipsearch.core.config import Settings
from clipsearch.core.errors import ClipsearchError, InsufficientScope, RateLimited, Unauthorized
from clipsearch.core.keys import KeyRing
from clipsearch.core.ratelimit import RateLimiter

PRINCIPAL = "clipsearch.principal"  # the ASGI scope key
ALWAYS_OPEN = frozenset({"/healthz", "/readyz", "/"})
PAGE_ASSETS = "/web/"  # the page's script and style (static, no data)
DOCS_ASSETS = "/docs/assets/"  # Swagger UI's and ReDoc's scripts (static library code)
DOCS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a key's ``name`` and ``scope``; ``scope`` None on an open path.
    ``keyed`` says a key vouched for it (with auth off nobody presents one)."""

    name: str | None
    scope: keys.Scope | None
    keyed: bool = False

    def allows(self, scope: keys.Scope) -> bool:
        return self.scope is not None and self.scope >= scope


OWNER = Principal(None, keys.Scope.admin)  # auth off: whoever reaches the port owns it
ANONYMOUS = Principal(None, None)  # an open path with auth on


@dataclass(frozen=True)
class Access:
    """The access policy built from settings at start-up."""

    keyring: KeyRing
    enabled: bool
    open_paths: frozenset[str]
    limiter: RateLimiter | None

    def is_open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith((PAGE_ASSETS, DOCS_ASSETS))


def build_access(cfg: Settings) -> Access:
    """The policy, or ``ValueError`` (one line) when the gateway must not start: keys that
    do not parse, auth off while keys are set, or no keys on a non-loopback address."""
    try:
        ring = KeyRing(keys.load_entries(cfg.api_keys, cfg.api_keys_file))
    except OSError as exc:
        raise ValueError(f"CLIPSEARCH_API_KEYS_FILE: {exc}") from exc
    if cfg.auth == "off" and ring:
        raise ValueError("CLIPSEARCH_AUTH=off but API keys are configured: remove one of them")
    if cfg.auth != "off" and not ring and not cfg.binds_loopback:
        raise ValueError(
            f"refusing to serve on {cfg.host} without API keys: set CLIPSEARCH_API_KEYS (see "
            "`clipsearch keys add`), or CLIPSEARCH_AUTH=off to serve everyone"
        )
    open_paths = set(ALWAYS_OPEN)
    if cfg.docs_open:
        open_paths |= DOCS
    if cfg.metrics_open:
        open_paths.add("/metrics")
    limiter = (
        RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst) if cfg.rate_limit_per_s else None
    )
    return Access(ring, bool(ring), frozenset(open_paths), limiter)


def presented_key(scope: Scope) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, if any."""
    for name, raw in scope.get("headers", []):
        value = str(raw.decode("latin-1")).strip()
        if name == b"authorization":
            kind, _, token = value.partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-api-key" and value:
            return value
    return None


def _client_address(scope: Scope) -> str:
    client = scope.get("client")
    return f"ip:{client[0]}" if client else "ip:unknown"


class Authenticate:
    """ASGI middleware: 401 / 429 before the app runs; puts the :class:`Principal` in the
    scope. Unverified keys are charged to the client address's bucket before the slow hash
    check, so guessing keys cannot burn CPU faster than the rate limit allows."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access
        # scrypt takes 16 MiB and tens of ms per check: two at a time bound both, whatever
        # a flood of made-up keys does (known keys are answered from the cache meanwhile).
        self._hashing = CapacityLimiter(2)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            scope[PRINCIPAL] = await self._principal(scope)
        except ClipsearchError as exc:
            await render(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal:
        access = self.access
        if access.is_open(scope["path"]):
            return ANONYMOUS if access.enabled else OWNER  # probes are never rate limited
        if not access.enabled:
            self._charge(_client_address(scope))
            return OWNER
        key = presented_key(scope)
        if key is None:
            raise Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key`",
                code="missing_api_key",
            )
        entry = access.keyring.cached(key)
        if entry is None:
            self._charge(_client_address(scope))
            entry = await to_thread.run_sync(access.keyring.verify, key, limiter=self._hashing)
        if entry is None:
            raise Unauthorized("unknown API key", code="invalid_api_key")
        self._charge(f"key:{entry.name}")
        return Principal(entry.name, entry.scope, keyed=True)

    def _charge(self, client: str) -> None:
        limiter = self.access.limiter
        if limiter is None:
            return
        wait = limiter.take(client)
        if wait > 0:
            who = "this key" if client.startswith("key:") else "this client"
            raise RateLimited(
                f"rate limit: {limiter.rate:g} requests/s for {who}", retry_after_s=wait
            )


def get_principal(request: Request) -> Principal:
    """The caller, as :class:`Authenticate` found it."""
    principal: Principal = request.scope[PRINCIPAL]
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: keys.Scope) -> Any:
    """A route dependency: 403 ``insufficient_scope`` unless the caller's key has ``scope``."""

    def check(principal: PrincipalDep) -> None:
        if not principal.allows(scope):
            have = principal.scope.name if principal.scope else "none"
            raise InsufficientScope(
                f"this needs a {scope.name} key (this key is {have})",
                details={"required": scope.name, "scope": have},
            )

    return Depends(check)


RequireRead = require(keys.Scope.read)
RequireWrite = require(keys.Scope.write)
RequireAdmin = require(keys.Scope.admin)
