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
