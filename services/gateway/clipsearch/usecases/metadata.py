"""Metadata bounds: checked at write time, and a guard for records already stored.

Metadata is free-form JSON the store keeps and every read renders again. A value that
cannot be rendered (300 nested objects: the response serialiser gives up at its depth
limit) would break *every* search that returns its record, so:

* writes refuse metadata deeper, wider or larger than the settings allow
  (:func:`check_metadata`, a 422 ``invalid_metadata`` naming the limit), and
* reads pass stored metadata through :func:`readable_metadata`, which replaces a value that
  was stored before those limits (or behind the API's back) with ``{}`` and says why, so the
  record is still returned.

Both walk the value iteratively: a 10,000-level value must not overflow the stack here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from clipsearch.core.config import Settings
from clipsearch.core.errors import InvalidRequest

# The most nesting a read renders; the depth setting cannot go above it. Well below the
# response serialiser's own limit, whatever the model nests the metadata in.
RENDER_MAX_DEPTH = 64
# What the store accepts for one record's metadata (its JSON field limit).
RENDER_MAX_BYTES = 65536
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class MetadataLimits:
    """The write-time bounds (settings ``max_metadata_depth`` / ``_keys`` / ``_bytes``)."""

    max_depth: int = 8
    max_keys: int = 256
    max_bytes: int = 16384

    @classmethod
    def of(cls, cfg: Settings) -> MetadataLimits:
        return cls(cfg.max_metadata_depth, cfg.max_metadata_keys, cfg.max_metadata_bytes)


def _shape(value: Any) -> tuple[int, int]:
    """(depth, number of object keys) of a JSON value, walked without recursion; raises
    ``ValueError`` for a value that is not JSON (a non-finite float, an odd type)."""
    depth = keys = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            depth = max(depth, level)
            keys += len(node)
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("metadata numbers must be finite")
        elif (
            isinstance(node, int)
            and not isinstance(node, bool)
            and not _INT64[0] <= node <= _INT64[1]
        ):
            raise ValueError("metadata integers must fit in 64 bits")  # the store's JSON
        elif node is not None and not isinstance(node, str | int | float | bool):
            raise ValueError(f"metadata values must be JSON, not {type(node).__name__}")
        if depth > RENDER_MAX_DEPTH:
            break  # deep enough to refuse; no need to walk 10,000 levels
    return depth, keys


def _invalid(message: str, **details: Any) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_metadata", details=details or None)


def check_metadata(raw: Any, limits: MetadataLimits) -> dict[str, Any]:
    """``raw`` if it is a JSON object within ``limits``; else :class:`InvalidRequest`
    (``invalid_metadata``, the limit in ``details``). ``None`` is ``{}``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _invalid("metadata must be a JSON object")
    try:
        depth, keys = _shape(raw)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    if depth > limits.max_depth:
        raise _invalid(
            f"metadata nests deeper than {limits.max_depth} levels",
            max_metadata_depth=limits.max_depth,
        )
    if keys > limits.max_keys:
        raise _invalid(
            f"metadata has {keys} keys, more than the limit of {limits.max_keys}",
            max_metadata_keys=limits.max_keys,
        )
    size = len(json.dumps(raw, ensure_ascii=False).encode("utf-8"))
    if size > limits.max_bytes:
        raise _invalid(
            f"metadata is {size} bytes as JSON, more than the limit of {limits.max_bytes}",
            max_metadata_bytes=limits.max_bytes,
        )
    return raw


def merged_metadata(
    shared: dict[str, Any], own: dict[str, Any], limits: MetadataLimits
) -> dict[str, Any]:
    """``own`` over ``shared`` (a job's metadata under an item's), checked as one value:
    what is stored is the merge, so the merge is what must fit."""
    return check_metadata({**shared, **own}, limits)


def readable_metadata(stored: Any) -> tuple[dict[str, Any], str | None]:
    """Stored metadata as it can be rendered: ``(metadata, None)``, or ``({}, reason)``
    when the stored value is not an object or too deep or large to render."""
    if stored is None:
        return {}, None
    if not isinstance(stored, dict):
        return {}, "stored metadata is not a JSON object"
    try:
        depth, _ = _shape(stored)
    except ValueError as exc:
        return {}, f"stored metadata is not renderable: {exc}"
    if depth > RENDER_MAX_DEPTH:
        return {}, f"stored metadata nests deeper than {RENDER_MAX_DEPTH} levels"
    if len(json.dumps(stored, ensure_ascii=False).encode("utf-8")) > RENDER_MAX_BYTES:
        return {}, f"stored metadata is larger than {RENDER_MAX_BYTES} bytes"
    return stored, None


__all__ = [
    "RENDER_MAX_BYTES",
    "RENDER_MAX_DEPTH",
    "MetadataLimits",
    "check_metadata",
    "merged_metadata",
    "readable_metadata",
]
