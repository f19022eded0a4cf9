"""Errors the use-cases raise. They carry a stable ``code`` and a ``kind`` the HTTP layer
maps to a status, so the use-cases stay free of any web framework."""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["invalid", "not_found", "conflict", "too_large", "unavailable"]


class UseCaseError(Exception):
    """A failure the caller should see: ``code`` is machine-readable, the message is not."""

    kind: Kind = "invalid"
    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidRequest(UseCaseError):
    kind = "invalid"
    code = "invalid_input"


class NotFoundError(UseCaseError):
    kind = "not_found"
    code = "not_found"


class UnknownCollection(NotFoundError):
    code = "unknown_collection"


class CollectionMismatch(UseCaseError):
    kind = "conflict"
    code = "collection_mismatch"


class TooLarge(UseCaseError):
    kind = "too_large"
    code = "payload_too_large"


class Unavailable(UseCaseError):
    kind = "unavailable"
    code = "unavailable"
