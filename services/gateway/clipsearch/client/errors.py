"""The client's one error class, :class:`GatewayError`, and how answers and transport
failures become one (each names the URL it tried)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

# How much of a non-JSON error body (a proxy's HTML page, say) goes into the message.
_TEXT_IN_MESSAGE = 300


class GatewayError(Exception):
    """A request to the gateway that did not succeed (client side; the server's own error
    kinds are :mod:`clipsearch.core.errors`, whose codes arrive here in ``code``).

    ``status`` is the HTTP status, 0 when there was no answer; ``code`` the gateway's
    error code, or ``unreachable`` / ``timeout`` / ``transport_error`` / ``invalid_url``
    when there was no answer; ``message`` the gateway's message; ``url`` the URL tried;
    ``details`` the error's details (often the limit that was exceeded); ``retry_after_s``
    the ``Retry-After`` of a 429 or 503. ``str()`` says all of it in one line.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        url: str = "",
        details: Any = None,
        retry_after_s: float | None = None,
        summary: str | None = None,
    ) -> None:
        super().__init__(summary or message)
        self.message = message
        self.status = status
        self.code = code
        self.url = url
        self.details = details
        self.retry_after_s = retry_after_s

    def limit(self, key: str) -> int | None:
        """The positive integer limit named ``key`` in the details, if the gateway gave it."""
        value = self.details.get(key) if isinstance(self.details, dict) and key else None
        return value if isinstance(value, int) and value > 0 else None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def refusal(request: httpx.Request, response: httpx.Response) -> GatewayError:
    """The gateway's error shape ``{"error": {code, message, details}}``, whatever it sent."""
    try:
        body = response.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    code = str(err.get("code") or "")
    message = str(err.get("message") or response.text[:_TEXT_IN_MESSAGE])
    return GatewayError(
        message,
        summary=f"{request.method} {request.url} answered {response.status_code} {code}: {message}",
        status=response.status_code,
        code=code,
        url=str(request.url),
        details=err.get("details"),
        retry_after_s=_retry_after(response),
    )


@contextlib.contextmanager
def transport_errors(method: str, url: str, base: str) -> Iterator[None]:
    """No answer (or a broken one) as a :class:`GatewayError` naming the URL tried."""
    try:
        yield
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise GatewayError(
            f"not a gateway URL: {url!r}: {exc}", code="invalid_url", url=url
        ) from exc
    except httpx.ConnectError as exc:
        raise GatewayError(
            f"cannot reach {base}: {exc} ({method} {url})", code="unreachable", url=url
        ) from exc
    except httpx.TimeoutException as exc:
        raise GatewayError(
            f"{method} {url}: no answer in time ({type(exc).__name__})", code="timeout", url=url
        ) from exc
    except httpx.HTTPError as exc:  # protocol errors, a closed connection, ...
        raise GatewayError(
            f"{method} {url} failed: {exc}", code="transport_error", url=url
        ) from exc
