"""The expression builder alone: exact strings, no server needed."""

from __future__ import annotations

import pytest

from clipsearch.store.milvus_expr import and_all, ids_expr, metadata_filter, string_literal
from clipsearch.store.protocol import InvalidStoreRequest


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("plain", '"plain"'),
        ('s0" or id != "', r'"s0\" or id != \""'),
        ("a\\b", r'"a\\b"'),
        ("\\", r'"\\"'),
        ('\\"', r'"\\\""'),
        ("two\nlines\r\tx", r'"two\nlines\r\tx"'),
        ("日本", '"日本"'),
    ],
)
def test_string_literal_escapes(value: str, rendered: str) -> None:
    assert string_literal(value) == rendered


def test_typed_values_and_lists() -> None:
    got = metadata_filter({"a": True, "b": 3, "c": 2.5, "d": ["x", 1, False]})
    assert got == (
        'metadata["a"] == true and metadata["b"] == 3 and metadata["c"] == 2.5 and '
        '(metadata["d"] == "x" or metadata["d"] == 1 or metadata["d"] == false)'
    )
    assert metadata_filter({}) == ""
    assert metadata_filter(None) == ""


@pytest.mark.parametrize(
    "bad",
    [
        {"x" * 65: 1},
        {"a.b": 1},
        {"_ok": 2**63},
        {"k": "v" * 5000},
        {"k": list(range(300))},
        {f"k{i}": 1 for i in range(17)},
    ],
)
def test_refusals(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidStoreRequest):
        metadata_filter(bad)


def test_ids_and_joins() -> None:
    assert ids_expr(["a", 'b"']) == r'id in ["a", "b\""]'
    assert and_all("", "x == 1") == "x == 1"
    assert and_all("a", "b") == "(a) and (b)"
    assert and_all() == ""
