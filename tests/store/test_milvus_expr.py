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


INJECTION = 's0" or id != "'


@pytest.mark.parametrize(
    ("flt", "rendered"),
    [
        ({"y": {"eq": "a"}}, 'metadata["y"] == "a"'),
        ({"y": {"gt": 1}}, 'metadata["y"] > 1'),
        ({"y": {"gte": 2020, "lt": 2024}}, 'metadata["y"] >= 2020 and metadata["y"] < 2024'),
        ({"y": {"lte": -2.5}}, 'metadata["y"] <= -2.5'),
        ({"y": {"in": ["a", 2]}}, '(metadata["y"] == "a" or metadata["y"] == 2)'),
        ({"y": {"ne": "x"}}, '((not (exists metadata["y"])) or (metadata["y"] != "x"))'),
        # Lite's != 1 also drops true: the look-alike comes back, the typed check decides.
        (
            {"y": {"ne": 1}},
            '((not (exists metadata["y"])) or (metadata["y"] != 1) or metadata["y"] == true)',
        ),
        (
            {"y": {"nin": [False, "b"]}},
            '((not (exists metadata["y"])) or (metadata["y"] != false and metadata["y"] != "b")'
            ' or metadata["y"] == 0)',
        ),
        (
            {"y": {"nin": [1, True]}},
            '((not (exists metadata["y"])) or (metadata["y"] != 1 and metadata["y"] != true))',
        ),
        ({"y": {"exists": True}}, '(exists metadata["y"])'),
        (
            {"y": {"exists": False}},
            '((not (exists metadata["y"])) or not (metadata["y"] == true or metadata["y"] == '
            'false or metadata["y"] >= 0 or metadata["y"] < 0 or metadata["y"] like "%"))',
        ),
        # Injection strings inside operator values stay one escaped literal.
        (
            {"y": {"ne": INJECTION}},
            r'((not (exists metadata["y"])) or (metadata["y"] != "s0\" or id != \""))',
        ),
        ({"y": {"in": [INJECTION]}}, r'(metadata["y"] == "s0\" or id != \"")'),
        (
            {"y": {"nin": ['\\"', "\n"]}},
            r'((not (exists metadata["y"])) or (metadata["y"] != "\\\"" and '
            r'metadata["y"] != "\n"))',
        ),
    ],
)
def test_operator_expressions(flt: dict[str, object], rendered: str) -> None:
    assert metadata_filter(flt) == rendered


@pytest.mark.parametrize(
    "bad",
    [
        {"y": {"$gt": 1}},  # unknown operator
        {"y": {"like": "a%"}},
        {"y": {}},  # an operator object with nothing in it
        {"y": {"gt": "2020"}},  # ranges take numbers only
        {"y": {"lt": True}},
        {"y": {"gte": None}},
        {"y": {"in": "a"}},  # in/nin take a list
        {"y": {"nin": []}},
        {"y": {"in": [{"a": 1}]}},
        {"y": {"eq": [1]}},
        {"y": {"ne": None}},
        {"y": {"exists": 1}},  # exists takes a boolean, and 1 is not one
        {"y": {"exists": "true"}},
        {"y": {"gt": float("inf")}},
        {"y": {"in": list(range(200)), "nin": list(range(100))}},  # 256 values per field
        {"y": {"ne": "v" * 5000}},
        {"y": {"eq": 2**63}},
    ],
)
def test_operator_refusals(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidStoreRequest):
        metadata_filter(bad)
