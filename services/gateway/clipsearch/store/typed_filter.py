"""Typed metadata filters: the grammar of :mod:`.filter_grammar` evaluated in Python, so
``{"n": true}`` matches the JSON boolean ``true`` only, never the number ``1`` (and
``{"n": 1}`` never matches ``true``), ranges match numbers only, ``ne`` matches a record
without the field.

Milvus Lite 3.2.2 compares JSON values with Python's ``==``, where ``True == 1``: no
expression it accepts tells a boolean from a number (arithmetic, ``in`` and ``like`` all
conflate them; tried), and it orders booleans among numbers (``true >= 1``). Standalone
2.3.5 keeps them apart but counts a JSON ``null`` as existing. So the expression from
:mod:`.milvus_expr` is a superset on some backend whenever a filter names a boolean or a
number or uses ``exists`` (:func:`needs_check`), and the hits are checked again here,
typed, with the metadata the search returns anyway. Keeping pages exact once the check
drops hits (reading on, ``offset`` applied after the check) is the caller's part: search
pages in :mod:`.milvus_paging`, id-order scans in :mod:`.milvus_browse`. Equality, ``in``,
``ne`` and ``nin`` on strings only need none of this: strings never match anything else, on
either backend. The in-memory ``FakeStore`` of the tests filters with :func:`matches` alone.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

from clipsearch.store import filter_grammar
from clipsearch.store.filter_grammar import Condition, is_number
from clipsearch.store.protocol import Filter


def same(stored: Any, wanted: Any) -> bool:
    """JSON equality with types kept apart: booleans equal booleans, strings strings,
    numbers numbers (``1 == 1.0``)."""
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return isinstance(stored, bool) and isinstance(wanted, bool) and stored == wanted
    if isinstance(stored, str) or isinstance(wanted, str):
        return isinstance(stored, str) and isinstance(wanted, str) and stored == wanted
    return isinstance(stored, int | float) and isinstance(wanted, int | float) and stored == wanted


def _holds(metadata: Mapping[str, Any], c: Condition) -> bool:
    stored: Any = metadata.get(c.field)
    present = stored is not None
    if c.op == "exists":
        return present is c.value
    if c.op in ("eq", "in", "ne", "nin"):
        options = c.value if isinstance(c.value, tuple) else (c.value,)
        equal = present and any(same(stored, w) for w in options)
        return equal if c.op in ("eq", "in") else not equal
    if not present or not is_number(stored):
        return False
    return bool(_ORDER[c.op](stored, c.value))


_ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def matches(metadata: Any, filters: Mapping[str, Any] | None) -> bool:
    """Every condition of ``filters`` holds for ``metadata`` (a record's metadata; not a
    mapping counts as ``{}``). Raises :class:`InvalidStoreRequest` for a bad filter."""
    conditions = filter_grammar.parse(filters)
    return matches_all(metadata, conditions)


def matches_all(metadata: Any, conditions: Sequence[Condition]) -> bool:
    """:func:`matches` with the filter already parsed (once, not per row)."""
    md = metadata if isinstance(metadata, Mapping) else {}
    return all(_holds(md, c) for c in conditions)


def needs_check(filters: Filter | None) -> bool:
    """True when the store's expression for ``filters`` may match more than the grammar
    on some backend: a boolean or a number anywhere in it, or ``exists``."""
    for c in filter_grammar.parse(filters):
        options = c.value if isinstance(c.value, tuple) else (c.value,)
        if c.op == "exists" or any(isinstance(w, bool | int | float) for w in options):
            return True
    return False


__all__ = ["matches", "matches_all", "needs_check", "same"]
