"""Typed metadata filters: ``{"n": true}`` matches the JSON boolean ``true`` only, never the
number ``1`` (and ``{"n": 1}`` never matches ``true``).

Milvus Lite 3.2.2 compares JSON values with Python's ``==``, where ``True == 1``: no
expression it accepts tells a boolean from a number (arithmetic, ``in`` and ``like`` all
conflate them; tried). So the expression from :mod:`.milvus_expr` is a superset, and when a
filter names a boolean or a number the hits are checked again here, typed, with the
metadata the search returns anyway. To keep pages exact, a search whose typed check dropped
hits is asked again for more (up to Milvus' top_k cap), and ``offset`` is applied after the
check. A filter of strings only needs none of this: strings never match anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from clipsearch.store.protocol import Filter, Hit

MAX_LIMIT = 16384  # Milvus: top_k + offset <= 16,384


def same(stored: Any, wanted: Any) -> bool:
    """JSON equality with types kept apart: booleans equal booleans, strings strings,
    numbers numbers (``1 == 1.0``)."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if isinstance(stored, str) or isinstance(wanted, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    return isinstance(stored, int | float) and isinstance(wanted, int | float) and stored == wanted


def matches(metadata: Any, filters: Mapping[str, Any] | None) -> bool:
    """Every field of ``filters`` equals (:func:`same`) its value or one of its values."""
    if not filters:
        return True
    if not isinstance(metadata, Mapping):
        return False
    for name, wanted in filters.items():
        if name not in metadata:
            return False
        options = wanted if isinstance(wanted, list | tuple) else [wanted]
        if not any(same(metadata[name], w) for w in options):
            return False
    return True


def needs_check(filters: Filter | None) -> bool:
    """True when ``filters`` names a boolean or a number (the values Lite conflates)."""
    for wanted in (filters or {}).values():
        options = wanted if isinstance(wanted, list | tuple) else [wanted]
        if any(isinstance(w, bool | int | float) for w in options):
            return True
    return False


def typed_search(
    run: Callable[[int, int], list[list[Hit]]],
    filters: Filter | None,
    *,
    top_k: int,
    offset: int,
) -> list[list[Hit]]:
    """``run(limit, offset)`` (a search returning ``metadata``), its hits checked by type.

    Without a boolean or number in ``filters`` this is ``run(top_k, offset)``. Otherwise the
    best ``offset + top_k`` hits are fetched, those of the wrong type dropped, and the
    search repeated with a larger limit (x4, at most :data:`MAX_LIMIT`) while that left a
    query short and the store had more; then each query's page is cut out.
    """
    if not needs_check(filters):
        return run(top_k, offset)
    want = offset + top_k
    limit = want
    while True:
        raw = run(limit, 0)
        pages = [[h for h in hits if matches(h.fields.get("metadata"), filters)] for hits in raw]
        short = any(len(p) < want and len(r) == limit for p, r in zip(pages, raw, strict=True))
        if not short or limit >= MAX_LIMIT:
            return [p[offset:want] for p in pages]
        limit = min(MAX_LIMIT, limit * 4)


__all__ = ["MAX_LIMIT", "matches", "needs_check", "same", "typed_search"]
