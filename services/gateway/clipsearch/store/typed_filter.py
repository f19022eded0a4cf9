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
from collections.abc import Callable, Mapping, Sequence
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


_ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_EMPTY: Mapping[str, Any] = {}
Check = Callable[[Mapping[str, Any]], bool]


def _check(c: Condition) -> Check:
    """One condition as a function of a record's metadata (built once per filter: the
    faiss store runs it over every row of a collection)."""
    field = c.field
    if c.op == "exists":
        want = bool(c.value)
        return lambda md: (md.get(field) is not None) is want
    if c.op in ("eq", "in", "ne", "nin"):
        options = c.value if isinstance(c.value, tuple) else (c.value,)
        positive = c.op in ("eq", "in")
        if all(isinstance(w, str) for w in options):  # strings equal strings only
            wanted = frozenset(options)
            return lambda md: (isinstance(v := md.get(field), str) and v in wanted) is positive

        def equal(md: Mapping[str, Any]) -> bool:
            stored = md.get(field)
            hit = stored is not None and any(same(stored, w) for w in options)
            return hit is positive

        return equal
    order, bound = _ORDER[c.op], c.value

    def ordered(md: Mapping[str, Any]) -> bool:
        stored: Any = md.get(field)
        return is_number(stored) and bool(order(stored, bound))

    return ordered


def predicate(conditions: Sequence[Condition]) -> Callable[[Any], bool]:
    """All ``conditions`` as one function of a record's metadata (not a mapping counts as
    ``{}``): the one evaluation of the grammar, for a row or a hundred thousand."""
    checks = [_check(c) for c in conditions]

    def holds(metadata: Any) -> bool:
        # type() first: isinstance against the Mapping ABC costs more than the checks.
        md = metadata if type(metadata) is dict or isinstance(metadata, Mapping) else _EMPTY
        for check in checks:  # noqa: SIM110  # a loop: all() over a generator is slower
            if not check(md):
                return False
        return True

    return holds


def matches(metadata: Any, filters: Mapping[str, Any] | None) -> bool:
    """Every condition of ``filters`` holds for ``metadata`` (a record's metadata; not a
    mapping counts as ``{}``). Raises :class:`InvalidStoreRequest` for a bad filter."""
    return predicate(filter_grammar.parse(filters))(metadata)


def matches_all(metadata: Any, conditions: Sequence[Condition]) -> bool:
    """:func:`matches` with the filter already parsed."""
    return predicate(conditions)(metadata)


def needs_check(filters: Filter | None) -> bool:
    """True when the store's expression for ``filters`` may match more than the grammar
    on some backend: a boolean or a number anywhere in it, or ``exists``."""
    for c in filter_grammar.parse(filters):
        options = c.value if isinstance(c.value, tuple) else (c.value,)
        if c.op == "exists" or any(isinstance(w, bool | int | float) for w in options):
            return True
    return False


__all__ = ["matches", "matches_all", "needs_check", "predicate", "same"]
