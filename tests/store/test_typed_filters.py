"""Typed filter matching, the same on every backend: ``{"n": true}`` matches the boolean
only, never ``1`` (Lite's own expressions match both), ``{"n": 1}`` never ``true``, and
pages stay exact when the backend's wider answer had to be narrowed."""

from __future__ import annotations

import numpy as np
import pytest

from clipsearch.store.milvus import MilvusStore
from clipsearch.store.protocol import ImageRecord, TextRecord
from tests.store.conftest import DIM

VALUES: list[object] = [1, True, 0, False, 1.0, "1", "true", 2, None]


def vec(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[0] = 1.0
    v[1] = 0.01 * i  # row i is a little farther from the query (e0) than row i - 1
    return v


CASES: list[tuple[object, set[str]]] = [
    (True, {"r1"}),
    (False, {"r3"}),
    (1, {"r0", "r4"}),  # 1 and 1.0 are the same JSON number
    (0, {"r2"}),
    ("1", {"r5"}),
    ("true", {"r6"}),
    ([True, 2], {"r1", "r7"}),
    ([1, "true"], {"r0", "r4", "r6"}),
]


@pytest.mark.parametrize("target", ["images", "texts"])
def test_booleans_numbers_and_strings_never_match_each_other(
    store: MilvusStore, g: str, target: str
) -> None:
    metas = [{"n": v} for v in VALUES]
    if target == "images":
        store.upsert_images(
            g, [ImageRecord(id=f"r{i}", vector=vec(i), metadata=m) for i, m in enumerate(metas)]
        )
    else:
        store.upsert_texts(
            g,
            [
                TextRecord(id=f"r{i}", vector=vec(i), text="t", metadata=m)
                for i, m in enumerate(metas)
            ],
        )
    for wanted, expected in CASES:
        hits = store.search(g, target, vec(0), top_k=20, filter={"n": wanted})[0]  # type: ignore[arg-type]
        assert {h.id for h in hits} == expected, wanted


def test_pages_stay_exact_when_the_backend_over_matches(store: MilvusStore, g: str) -> None:
    # 40 booleans nearest the query, then 6 ones: an untyped top 4 would be all booleans.
    metas = [{"n": True}] * 40 + [{"n": 1}] * 6
    store.upsert_images(
        g, [ImageRecord(id=f"r{i:02d}", vector=vec(i), metadata=m) for i, m in enumerate(metas)]
    )
    ones = [f"r{i:02d}" for i in range(40, 46)]
    page = store.search(g, "images", vec(0), top_k=3, offset=2, filter={"n": 1})[0]
    assert [h.id for h in page] == ones[2:5]
    trues = store.search(g, "images", vec(0), top_k=5, offset=38, filter={"n": True})[0]
    assert [h.id for h in trues] == ["r38", "r39"]


INJECTION = 's0" or id != "'
# Metadata mixing booleans, integers, floats, strings, null, a list and a missing field.
MIXED: list[dict[str, object]] = [
    {"v": True, "w": "x"},  # m0
    {"v": False},  # m1
    {"v": 1, "w": "x"},  # m2
    {"v": 0},  # m3
    {"v": 1.0},  # m4
    {"v": 2.5, "w": "x"},  # m5
    {"v": 2020},  # m6
    {"v": "a"},  # m7
    {"v": "1"},  # m8
    {"v": None},  # m9
    {},  # m10: no v
    {"v": ["a"]},  # m11
    {"v": -3},  # m12
    {"v": INJECTION},  # m13
]
ALL = {f"m{i}" for i in range(len(MIXED))}


def but(*excluded: int) -> set[str]:
    return ALL - {f"m{i}" for i in excluded}


def only(*included: int) -> set[str]:
    return {f"m{i}" for i in included}


OPERATOR_CASES: list[tuple[dict[str, object], set[str]]] = [
    ({"v": {"eq": True}}, only(0)),
    ({"v": {"eq": 1}}, only(2, 4)),
    ({"v": {"eq": "1"}}, only(8)),
    ({"v": {"gt": 0}}, only(2, 4, 5, 6)),  # never true
    ({"v": {"gte": 1}}, only(2, 4, 5, 6)),
    ({"v": {"lt": 1}}, only(3, 12)),  # never false
    ({"v": {"lte": 0}}, only(3, 12)),
    ({"v": {"gte": 0, "lt": 2020}}, only(2, 3, 4, 5)),
    ({"v": {"gt": -10.5, "lte": 1}}, only(2, 3, 4, 12)),
    ({"v": {"in": [True, "a"]}}, only(0, 7)),
    ({"v": {"in": [0, 2020]}}, only(3, 6)),
    ({"v": {"nin": [True, "a"]}}, but(0, 7)),
    ({"v": {"nin": [1, 0]}}, but(2, 3, 4)),
    ({"v": {"ne": 1}}, but(2, 4)),  # true, null and the missing field included
    ({"v": {"ne": True}}, but(0)),
    ({"v": {"ne": False}}, but(1)),
    ({"v": {"ne": 0}}, but(3)),
    ({"v": {"ne": "a"}}, but(7)),
    ({"v": {"ne": INJECTION}}, but(13)),
    ({"v": {"eq": INJECTION}}, only(13)),
    ({"v": {"in": [INJECTION, "zz"]}}, only(13)),
    ({"v": {"exists": True}}, but(9, 10)),
    ({"v": {"exists": False}}, only(9, 10)),
    ({"v": {"exists": True, "ne": "a", "lt": 2}}, only(2, 3, 4, 12)),
    ({"v": {"gte": 1}, "w": "x"}, only(2, 5)),
    ({"w": {"exists": False}, "v": {"in": [True, 1]}}, only(4)),
    ({"nope": {"exists": False}}, ALL),
    ({"nope": {"ne": 1}}, ALL),
    ({"nope": {"eq": 1}}, set()),
    ({"nope": {"gt": 0}}, set()),
]


def test_operators_on_mixed_types(store: MilvusStore, g: str) -> None:
    store.upsert_images(
        g, [ImageRecord(id=f"m{i}", vector=vec(i), metadata=m) for i, m in enumerate(MIXED)]
    )
    store.upsert_texts(
        g,
        [TextRecord(id=f"m{i}", vector=vec(i), text="t", metadata=m) for i, m in enumerate(MIXED)],
    )
    wrong = []
    for flt, expected in OPERATOR_CASES:
        for target in ("images", "texts"):
            hits = store.search(g, target, vec(0), top_k=50, filter=flt)[0]
            if {h.id for h in hits} != expected:
                wrong.append((target, flt, sorted({h.id for h in hits} ^ expected)))
    assert wrong == []
