"""Milvus boolean expressions built from untrusted input, safely.

Neither Milvus Lite 3.2.2 nor standalone 2.3.5 accepts expression templates
(``filter_params``), so values are rendered as literals: strings inside double quotes with
backslash, quote and line breaks escaped (verified on both backends: an injection string
then matches only itself), numbers and booleans typed, field names checked against a strict
pattern. The filter grammar is :mod:`.filter_grammar`; each condition becomes:

==================  ==========================================================================
``eq`` / scalar     ``m["f"] == v``
``in`` / list       ``(m["f"] == a or m["f"] == b)``: Lite refuses ``in`` on a JSON path
                    ("left side of 'in' must be a field reference"); standalone fails it
                    with an internal error
``gt`` ... ``lte``  ``m["f"] > v`` (both backends compare numbers only; Lite also orders
                    booleans as 0/1, which :mod:`.typed_filter` drops)
``ne`` / ``nin``    ``((not (exists m["f"])) or (m["f"] != a and ...))``: a record without
                    the field matches. Standalone's ``!=`` is already true for a missing
                    field or ``null``; Lite's is not (three-valued: unknown), hence the
                    ``not exists``. Lite's ``!= 1`` also drops ``true`` (Python's
                    ``True == 1``), so a 0/1/true/false value adds its look-alike
                    (``or m["f"] == true``) and the typed check removes the extra rows
``exists``          ``(exists m["f"])``: Lite counts ``null`` as missing, standalone as
                    present; ``false``: ``((not (exists m["f"])) or not (m["f"] == true or
                    ... or m["f"] like "%"))``, a superset on standalone (null, lists and
                    objects), exact on Lite
==================  ==========================================================================

``exists`` must be parenthesised: standalone parses ``exists a and b`` as ``exists (a and
b)`` and refuses it. Wherever an expression is a superset on one backend, the filter
``needs_check`` and the hits are narrowed in Python (:mod:`.typed_filter`), so every
backend returns exactly the grammar's semantics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from clipsearch.store import filter_grammar
from clipsearch.store.filter_grammar import (
    FIELD_RE,
    MAX_FILTER_FIELDS,
    MAX_FILTER_VALUES,
    Condition,
    check_field,
    is_number,
)
from clipsearch.store.protocol import InvalidStoreRequest

__all__ = [
    "FIELD_RE",
    "MAX_FILTER_FIELDS",
    "MAX_FILTER_VALUES",
    "and_all",
    "check_field",
    "ids_expr",
    "literal",
    "metadata_filter",
    "string_literal",
]

MAX_STRING_BYTES = 4096
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# The expression grammar rejects raw line breaks inside a string literal; the parser
# unescapes \n \r \t. Backslash must be replaced first so later escapes stay single.
_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def string_literal(value: str) -> str:
    """``value`` as a double-quoted Milvus string literal that can only match itself."""
    if len(value.encode("utf-8")) > MAX_STRING_BYTES:
        raise InvalidStoreRequest(f"filter value longer than {MAX_STRING_BYTES} bytes")
    out = value
    for raw, escaped in _ESCAPES:
        out = out.replace(raw, escaped)
    return f'"{out}"'


def literal(value: Any) -> str:
    """A typed literal for a JSON scalar: string, integer, finite float or boolean."""
    # bool first: it is a subclass of int, and JSON true must not match 1.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidStoreRequest("filter integer out of int64 range")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidStoreRequest("filter number must be finite")
        return repr(value)
    if isinstance(value, str):
        return string_literal(value)
    raise InvalidStoreRequest(
        f"filter values must be strings, numbers or booleans, not {type(value).__name__}"
    )


def _lookalikes(values: Sequence[Any]) -> list[Any]:
    """What Lite's ``==`` confuses ``values`` with (``True == 1``, ``False == 0``), minus
    what is already there."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, bool):
            twin: Any = int(v)
        elif is_number(v) and v in (0, 1):
            twin = bool(v)
        else:
            continue
        if not any(type(twin) is type(w) and twin == w for w in [*values, *out]):
            out.append(twin)
    return out


def _clause(path: str, c: Condition) -> str:
    if c.op == "eq":
        return f"{path} == {literal(c.value)}"
    if c.op == "in":
        ors = " or ".join(f"{path} == {literal(v)}" for v in c.value)
        return f"({ors})"
    if c.op in _RANGE:
        return f"{path} {_RANGE[c.op]} {literal(c.value)}"
    missing = f"(not (exists {path}))"
    if c.op in ("ne", "nin"):
        values = [c.value] if c.op == "ne" else list(c.value)
        ands = " and ".join(f"{path} != {literal(v)}" for v in values)
        extra = "".join(f" or {path} == {literal(t)}" for t in _lookalikes(values))
        return f"({missing} or ({ands}){extra})"
    assert c.op == "exists"
    if c.value:
        return f"(exists {path})"
    anything = " or ".join(
        [f"{path} == true", f"{path} == false", f"{path} >= 0", f"{path} < 0", f'{path} like "%"']
    )
    return f"({missing} or not ({anything}))"


_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def metadata_filter(filters: Mapping[str, Any] | None, json_field: str = "metadata") -> str:
    """``{"color": "red", "n": {"gte": 1}}`` -> ``metadata["color"] == "red" and ...``.

    The grammar is :mod:`.filter_grammar` (a bad filter raises
    :class:`InvalidStoreRequest`); every condition must match. An empty mapping gives an
    empty expression (no filter). On Lite the expression may match more than the grammar
    (see the module docstring): narrow the hits with :mod:`.typed_filter` when
    ``needs_check``.
    """
    return " and ".join(
        _clause(f'{json_field}["{c.field}"]', c) for c in filter_grammar.parse(filters)
    )


def ids_expr(ids: Iterable[str], field: str = "id") -> str:
    """``id in ["a", "b"]`` with every id escaped (ids come from URLs)."""
    return f"{field} in [{', '.join(string_literal(i) for i in ids)}]"


def and_all(*exprs: str) -> str:
    """Join non-empty expressions with ``and``, each parenthesised."""
    parts = [e for e in exprs if e]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " and ".join(f"({p})" for p in parts)
