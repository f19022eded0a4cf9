"""The expansion dictionary's matching, its file format, and how vectors are combined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clipsearch.core.errors import InvalidRequest
from clipsearch.demo import shapes
from clipsearch.usecases.expansion import (
    MAX_EXPANSIONS_PER_KEY,
    ExpansionDictionary,
    QueryExpander,
    TextQuery,
    default_dictionary_path,
)

WORDS = ExpansionDictionary(
    {
        "红色": ["red"],
        "红色圆形": ["a red circle"],
        "圆形": ["circle"],
        "金毛": ["golden retriever dog", "a golden retriever"],
        "cat": ["a photo of a cat"],
    }
)


def test_the_whole_query_is_matched_first() -> None:
    found = WORDS.lookup("金毛")
    assert found is not None
    assert found.matched == "query"
    assert found.texts == ("golden retriever dog", "a golden retriever")


def test_longest_terms_inside_the_query_are_joined_in_order() -> None:
    found = WORDS.lookup("左边的红色圆形和红色的圆形")
    assert found is not None
    assert found.matched == "terms"
    # 红色圆形 is longer than 红色 and wins where both start; 的, 左边, 和 are not terms.
    assert found.terms == (("红色圆形", "a red circle"), ("红色", "red"), ("圆形", "circle"))
    assert found.texts == ("a red circle red circle",)


def test_latin_terms_match_whole_words_only() -> None:
    assert WORDS.lookup("category") is None
    found = WORDS.lookup("a black cat, sleeping")
    assert found is not None
    assert found.terms == (("cat", "a photo of a cat"),)


def test_keys_and_queries_are_compared_normalised() -> None:
    assert WORDS.lookup("\uff23\uff21\uff34") is not None  # full-width upper-case CAT
    assert WORDS.lookup("  金毛 ") is not None
    assert WORDS.lookup("a dog") is None


def test_dictionary_files(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"狗": "dog", "猫": ["cat", "kitten"]}), encoding="utf-8")
    loaded = ExpansionDictionary.from_file(good)
    assert len(loaded) == 2
    assert loaded.lookup("狗") is not None
    bad_cases = [
        "not json",
        json.dumps(["a", "list"]),
        json.dumps({"狗": 3}),
        json.dumps({"狗": ""}),
        json.dumps({"": "dog"}),
        json.dumps({"狗": []}),
        json.dumps({"狗": ["dog"] * (MAX_EXPANSIONS_PER_KEY + 1)}),
    ]
    for i, text in enumerate(bad_cases):
        bad = tmp_path / f"bad{i}.json"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError, match=str(bad)):
            ExpansionDictionary.from_file(bad)


def test_the_packaged_dictionary_covers_the_demo_vocabulary() -> None:
    words = ExpansionDictionary.from_file(default_dictionary_path())
    tables = [
        {chinese: english for english, chinese in table.items()}
        for table in (shapes.COLOURS_ZH, shapes.SHAPES_ZH, shapes.SIZES_ZH)
    ]
    tables.append({zh: shapes.POSITION_PHRASES[en] for en, zh in shapes.POSITIONS_ZH.items()})
    for table in tables:
        for chinese, english in table.items():
            found = words.lookup(chinese)
            assert found is not None, chinese
            assert found.texts == (english,), (chinese, found)
    for photo_word in ("金毛", "猫", "狗", "海滩", "日落"):
        assert words.lookup(photo_word) is not None, photo_word
    found = words.lookup("红色的圆形")
    assert found is not None
    assert found.texts[0] == "a red circle"


def _expander(max_terms: int = 4, max_texts: int = 16) -> QueryExpander:
    return QueryExpander(WORDS, max_terms=max_terms, max_chars=50, max_texts=max_texts)


def test_plan_encodes_each_text_once_and_keeps_plain_vectors_exact() -> None:
    plan = _expander().plan(
        [
            TextQuery((("金毛", 1.0),), expand=True),
            TextQuery((("a  dog", 1.0),)),
            TextQuery((("a dog", 2.0), ("金毛", -1.0)), weighted=True),
        ]
    )
    assert plan.texts == ["金毛", "golden retriever dog", "a golden retriever", "a dog"]
    assert plan.expansions[0] is not None
    assert len(plan.expansions[0]) == 1
    assert plan.expansions[1] is None
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(4, 8)).astype(np.float32)
    vectors = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    out = plan.combine(vectors)
    np.testing.assert_array_equal(out[1], vectors[3])  # plain: the encoder's vector as is
    expected0 = vectors[:3].mean(axis=0)
    np.testing.assert_allclose(out[0], expected0 / np.linalg.norm(expected0), atol=1e-6)
    expected2 = 2.0 * vectors[3] - vectors[0]
    np.testing.assert_allclose(out[2], expected2 / np.linalg.norm(expected2), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_cancelling_terms_are_a_degenerate_query() -> None:
    plan = _expander().plan([TextQuery((("a", 1.0), ("b", 1.0)), weighted=True)])
    vectors = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    with pytest.raises(InvalidRequest) as caught:
        plan.combine(vectors)
    assert caught.value.code == "degenerate_query"


@pytest.mark.parametrize(
    ("terms", "code"),
    [
        ((), "empty_query"),
        ((("a", 1.0), ("b", 1.0), ("c", 1.0), ("d", 1.0), ("e", 1.0)), "too_many_terms"),
        ((("a", float("nan")),), "invalid_weight"),
        ((("a", float("inf")),), "invalid_weight"),
        ((("a", 0.0),), "invalid_weights"),
        ((("a", 1.0), ("b", -1.0)), "invalid_weights"),
        ((("", 1.0),), "empty_text"),
        ((("x" * 51, 1.0),), "text_too_long"),
    ],
)
def test_bad_weighted_queries(terms: tuple[tuple[str, float], ...], code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _expander().plan([TextQuery(terms, weighted=True)])
    assert caught.value.code == code


def test_the_texts_of_a_request_are_bounded() -> None:
    queries = [TextQuery(((f"query {i}", 1.0),)) for i in range(17)]
    with pytest.raises(InvalidRequest) as caught:
        _expander(max_texts=16).plan(queries)
    assert caught.value.code == "too_many_terms"
