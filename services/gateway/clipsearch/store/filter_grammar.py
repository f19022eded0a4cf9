"""The metadata filter grammar, parsed once into typed conditions.

A filter is a JSON object ``{field: condition, ...}``; every field must match (AND)::

    {"album": "home"}                      equality (a scalar)
    {"tag": ["a", "b"]}                    any of (a list of scalars)
    {"year": {"gte": 2020, "lt": 2024}}    an operator object; its operators are ANDed

Operators: ``eq``/``ne`` (a scalar), ``in``/``nin`` (a non-empty list of scalars),
``gt``/``gte``/``lt``/``lte`` (a number), ``exists`` (a boolean). Scalars are strings,
numbers and booleans; they are typed: a boolean never equals ``1``, a string never a
number, range operators only ever match numbers (never a boolean). ``ne`` and ``nin``
match a record that lacks the field (or holds ``null`` there); ``exists: true`` means the
field is there with a non-null value, ``exists: false`` that it is missing or ``null``.

:func:`parse` refuses anything else with :class:`InvalidStoreRequest` (the use-cases turn it
into ``invalid_filter``); :mod:`.milvus_expr` renders the conditions as an expression and
:mod:`.typed_filter` evaluates them in Python with exactly these semantics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clipsearch.store.protocol import InvalidStoreRequest

FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_FILTER_FIELDS = 16
MAX_FILTER_VALUES = 256  # per field, all its operators together

SCALAR_OPS = frozenset({"eq", "ne"})
LIST_OPS = frozenset({"in", "nin"})
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})
OPERATORS = SCALAR_OPS | LIST_OPS | RANGE_OPS | {"exists"}


@dataclass(frozen=True, slots=True)
class Condition:
    """One operator on one field: ``value`` is a scalar, a tuple of scalars (``in``,
    ``nin``), a number (ranges) or a boolean (``exists``)."""

    field: str
    op: str
    value: Any


def is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_field(name: object) -> str:
    if not isinstance(name, str) or not FIELD_RE.fullmatch(name):
        raise InvalidStoreRequest(
            f"filter field {name!r} is not allowed (letters, digits and _, at most 64, "
            "not starting with a digit)"
        )
    return name


def _scalar(field: str, op: str, value: object) -> object:
    if not is_scalar(value):
        raise InvalidStoreRequest(
            f"filter field {field!r}: {op} needs a string, number or boolean, "
            f"not {type(value).__name__}"
        )
    return value


def _values(field: str, op: str, value: object) -> tuple[object, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidStoreRequest(f"filter field {field!r}: {op} needs a non-empty list")
    return tuple(_scalar(field, op, v) for v in value)


def _condition(field: str, op: object, value: object) -> Condition:
    if not isinstance(op, str) or op not in OPERATORS:
        raise InvalidStoreRequest(
            f"filter field {field!r}: unknown operator {op!r} (use one of "
            f"{', '.join(sorted(OPERATORS))})"
        )
    if op in SCALAR_OPS:
        return Condition(field, op, _scalar(field, op, value))
    if op in LIST_OPS:
        return Condition(field, op, _values(field, op, value))
    if op in RANGE_OPS:
        if not is_number(value):
            raise InvalidStoreRequest(
                f"filter field {field!r}: {op} needs a number, not {type(value).__name__}"
            )
        return Condition(field, op, value)
    if not isinstance(value, bool):
        raise InvalidStoreRequest(f"filter field {field!r}: exists needs true or false")
    return Condition(field, op, value)


def _count(c: Condition) -> int:
    return len(c.value) if isinstance(c.value, tuple) else 1


def parse(filters: Mapping[str, Any] | None) -> list[Condition]:
    """The conditions of ``filters`` in order (empty for no filter), or
    :class:`InvalidStoreRequest` naming the field and what is wrong."""
    if not filters:
        return []
    if not isinstance(filters, Mapping):
        raise InvalidStoreRequest("filter must be an object of field -> condition")
    if len(filters) > MAX_FILTER_FIELDS:
        raise InvalidStoreRequest(f"filter has more than {MAX_FILTER_FIELDS} fields")
    out: list[Condition] = []
    for name, wanted in filters.items():
        field = check_field(name)
        if isinstance(wanted, Mapping):
            if not wanted:
                raise InvalidStoreRequest(f"filter field {field!r} has an empty operator object")
            conditions = [_condition(field, op, v) for op, v in wanted.items()]
        elif isinstance(wanted, list | tuple):
            conditions = [Condition(field, "in", _values(field, "any of", wanted))]
        else:
            conditions = [Condition(field, "eq", _scalar(field, "equality", wanted))]
        if sum(_count(c) for c in conditions) > MAX_FILTER_VALUES:
            raise InvalidStoreRequest(
                f"filter field {field!r} has more than {MAX_FILTER_VALUES} values"
            )
        out.extend(conditions)
    return out


__all__ = [
    "FIELD_RE",
    "MAX_FILTER_FIELDS",
    "MAX_FILTER_VALUES",
    "OPERATORS",
    "Condition",
    "check_field",
    "is_number",
    "is_scalar",
    "parse",
]
