"""The error kinds of clipsearch: one vocabulary for use-cases, jobs and adapters.

An error is raised where the failure is understood, with a stable machine-readable ``code``
(the message is for people); its class says which *kind* of failure it is. Turning a kind
into an HTTP status happens in one place only, :mod:`clipsearch.api.errors`, so this module
imports nothing but the standard library and the use-cases stay free of any web framework.

Hierarchy (kind, then the status ``api/errors.py`` gives it, then the default code)::

    ClipsearchError                     -                -    invalid_input
    ├── InvalidRequest                  invalid          422  invalid_input
    │   ├── (encoder) ImageDecodeError                        invalid_image | image_too_large
    │   └── (jobs) UploadError                                invalid_multipart
    ├── Unauthorized                    unauthorized     401  unauthorized
    ├── Forbidden                       forbidden        403  forbidden
    │   └── InsufficientScope                                 insufficient_scope
    ├── NotFoundError                   not_found        404  not_found
    │   └── UnknownCollection                                 unknown_collection
    ├── CollectionMismatch              conflict         409  collection_mismatch
    ├── Conflict                        conflict         409  conflict
    ├── TooLarge                        too_large        413  payload_too_large
    ├── UnsupportedMediaType            unsupported      415  unsupported_media_type
    ├── TooManyRequests                 busy             429  too_many_requests
    │   ├── (jobs) QueueFull
    │   └── RateLimited                                       rate_limited
    └── Unavailable                     unavailable      503  unavailable

``retry_after_s`` (``TooManyRequests``, ``Unavailable``) tells a client when to come back.
The adapters' own failures (``EncoderError``, ``StoreError``) are not kinds: a use-case that
knows what they mean translates them (e.g. to ``Unavailable`` with ``encoder_unavailable``),
and ``api/errors.py`` renders any that reach it untranslated.
"""

from __future__ import annotations

from typing import Any, Literal, Self

Kind = Literal[
    "invalid",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "unsupported",
    "busy",
    "unavailable",
]


class ClipsearchError(Exception):
    """A failure the caller should see: ``code`` is machine-readable, the message is not."""

    kind: Kind = "invalid"
    code = "invalid_input"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.retry_after_s = retry_after_s

    def with_details(self, details: Any) -> Self:
        """A copy of this error (class, code, message) carrying other ``details``."""
        # Not via __init__: subclasses may take other arguments (e.g. QueueFull).
        clone = type(self).__new__(type(self), *self.args)
        clone.__dict__.update(self.__dict__)
        clone.details = details
        return clone


class InvalidRequest(ClipsearchError):
    """The input is wrong; sending it again will not help."""

    kind = "invalid"
    code = "invalid_input"


class Unauthorized(ClipsearchError):
    """No API key, or one this server does not know (rendered with ``WWW-Authenticate``)."""

    kind = "unauthorized"
    code = "unauthorized"


class Forbidden(ClipsearchError):
    """The request is understood but this server does not allow it (a switched-off feature,
    a cross-site request)."""

    kind = "forbidden"
    code = "forbidden"


class InsufficientScope(Forbidden):
    """The API key is valid but its scope (read < write < admin) is too low for this."""

    code = "insufficient_scope"


class NotFoundError(ClipsearchError):
    """The named thing (image, text, job) does not exist."""

    kind = "not_found"
    code = "not_found"


class UnknownCollection(NotFoundError):
    """A read names a collection that was never written to."""

    code = "unknown_collection"


class CollectionMismatch(ClipsearchError):
    """The collection was built with another model than the one running now."""

    kind = "conflict"
    code = "collection_mismatch"


class Conflict(ClipsearchError):
    """The request contradicts the current state (e.g. an import into a collection that
    is not empty); ``code`` says which."""

    kind = "conflict"
    code = "conflict"


class TooLarge(ClipsearchError):
    """A file or body is over a size limit."""

    kind = "too_large"
    code = "payload_too_large"


class UnsupportedMediaType(ClipsearchError):
    """The body is in a format this endpoint does not read."""

    kind = "unsupported"
    code = "unsupported_media_type"


class TooManyRequests(ClipsearchError):
    """Too much work is waiting; retry after ``retry_after_s``."""

    kind = "busy"
    code = "too_many_requests"


class RateLimited(TooManyRequests):
    """This key (or, without one, this client address) sent more than its rate allows."""

    code = "rate_limited"


class Unavailable(ClipsearchError):
    """A dependency (encoder, store, disk) failed; the same request may succeed later."""

    kind = "unavailable"
    code = "unavailable"


__all__ = [
    "ClipsearchError",
    "CollectionMismatch",
    "Conflict",
    "Forbidden",
    "InsufficientScope",
    "InvalidRequest",
    "Kind",
    "NotFoundError",
    "RateLimited",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnknownCollection",
    "UnsupportedMediaType",
]
