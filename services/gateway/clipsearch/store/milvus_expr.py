"""Milvus boolean expressions built from untrusted input, safely.

Neither Milvus Lite 3.2.2 nor standalone 2.3.5 accepts expression templates
(``filter_params``), so values are rendered as literals: strings inside double quotes with
backslash, quote and line breaks escaped (verified on both backends: an injection string
then matches only itself), numbers and booleans typed, field names checked against a strict
pattern. Lists become ``(a == x or a == y)`` rather than ``a in [x, y]`` because Lite
refuses ``in`` on a JSON path ("left side of 'in' must be a field reference").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from clipsearch.store.protocol import InvalidStoreRequest

FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_FILTER_FIELDS = 16
MAX_FILTER_VALUES = 256
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


def check_field(name: object) -> str:
    if not isinstance(name, str) or not FIELD_RE.fullmatch(name):
        raise InvalidStoreRequest(
            f"filter field {name!r} is not allowed (letters, digits and _, at most 64, "
            "not starting with a digit)"
        )
    return name


def metadata_filter(filters: Mapping[str, Any] | None, json_field: str = "metadata") -> str:
    """``{"color": "red", "n": [1, 2]}`` -> ``metadata["color"] == "red" and (...)``.

    A field matches when its value equals the given scalar, or any value of a given list.
    All fields must match. An empty mapping gives an empty expression (no filter).
    """
    if not filters:
        return ""
    if not isinstance(filters, Mapping):
        raise InvalidStoreRequest("filter must be an object of field -> value(s)")
    if len(filters) > MAX_FILTER_FIELDS:
        raise InvalidStoreRequest(f"filter has more than {MAX_FILTER_FIELDS} fields")
    clauses: list[str] = []
    for name, wanted in filters.items():
        path = f'{json_field}["{check_field(name)}"]'
        if isinstance(wanted, list | tuple):
            if not wanted:
                raise InvalidStoreRequest(f"filter field {name!r} has an empty list")
            if len(wanted) > MAX_FILTER_VALUES:
                raise InvalidStoreRequest(
                    f"filter field {name!r} has more than {MAX_FILTER_VALUES} values"
                )
            ors = " or ".join(f"{path} == {literal(v)}" for v in wanted)
            clauses.append(f"({ors})")
        else:
            clauses.append(f"{path} == {literal(wanted)}")
    return " and ".join(clauses)


def ids_expr(ids: Iterable[str], field: str = "id") -> str:
    """``id in ["a", "b"]`` with every id escaped (ids come from URLs)."""
    return f"{field} in [{', '.join(string_literal(i) for i in ids)}]"


def and_all(*exprs: str) -> str:
    """Join non-empty expressions with ``and``, each parenthesised."""
    parts = [e for e in exprs if e]
    if len(parts) <= 1:
        return parts[0] if parts else ""
    return " and ".join(f"({p})" for p in parts)
