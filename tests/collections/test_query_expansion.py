"""Query expansion and weighted text queries over HTTP, on Lite and on the standalone server.

The gateway serves the English-only ``shapes`` model: a Chinese query is out of its
vocabulary (its vector points nowhere in particular), and only the packaged Chinese
dictionary (``expand: true``) turns it into something the model understands.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from tests.collections.conftest import Api, pictures

# 64 pictures (seed 11), 5 of them with a red circle; the rest are other colours and shapes.
N_PICTURES = 64


@pytest.fixture(scope="module")
def shapes_collection(api: Api) -> str:
    name = f"qx_{uuid.uuid4().hex[:10]}"
    pngs, captions = pictures(N_PICTURES, seed=11)
    assert sum("red circle" in c for c in captions) == 5
    api.stored(pngs, captions, collection=name)
    return name


def _search(api: Api, collection: str, **body: Any) -> dict[str, Any]:
    r = api.client.post("/v1/search/text", params={"collection": collection}, json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def _captions(result: dict[str, Any]) -> list[str]:
    return [str(h["caption"]) for h in result["hits"]]


def _red_circles(captions: list[str]) -> int:
    return sum("red circle" in c for c in captions)


def test_chinese_query_fails_without_expansion_and_hits_with_it(
    api: Api, shapes_collection: str
) -> None:
    plain = _search(api, shapes_collection, query="红色的圆形", top_k=5)
    assert plain["expansions"] is None
    assert _red_circles(_captions(plain)) == 0, _captions(plain)

    expanded = _search(api, shapes_collection, query="红色的圆形", expand=True, top_k=5)
    captions = _captions(expanded)
    assert "red circle" in captions[0], captions
    assert _red_circles(captions) >= 2, captions
    # The whole query is a dictionary term: its expansions were encoded beside it.
    assert expanded["expansions"] == [
        {
            "text": "红色的圆形",
            "matched": "query",
            "terms": [{"term": "红色的圆形", "expansion": "a red circle"}],
            "expansions": ["a red circle", "red circle"],
        }
    ]


def test_terms_inside_a_longer_query_are_expanded_by_longest_match(
    api: Api, shapes_collection: str
) -> None:
    result = _search(api, shapes_collection, query="左边一个小的红色圆形", expand=True, top_k=3)
    (used,) = result["expansions"]
    assert used["matched"] == "terms"
    assert [t["term"] for t in used["terms"]] == ["左边", "一个", "小的", "红色圆形"]
    assert used["expansions"] == ["on the left a small a red circle"]
    assert "red circle" in _captions(result)[0]


def test_expand_with_nothing_to_expand_lists_no_expansions(
    api: Api, shapes_collection: str
) -> None:
    plain = _search(api, shapes_collection, query="a red circle", top_k=5)
    expanded = _search(api, shapes_collection, query="a red circle", expand=True, top_k=5)
    assert expanded["expansions"] == []
    assert [h["id"] for h in expanded["hits"]] == [h["id"] for h in plain["hits"]]


def test_weighted_queries(api: Api, shapes_collection: str) -> None:
    plain = _search(api, shapes_collection, query="a red circle", top_k=6)
    single = _search(api, shapes_collection, query={"a red circle": 1.0}, top_k=6)
    assert [h["id"] for h in single["hits"]] == [h["id"] for h in plain["hits"]]
    for a, b in zip(single["hits"], plain["hits"], strict=True):
        assert math.isclose(a["score"], b["score"], abs_tol=1e-5)
    assert not any("blue" in c for c in _captions(plain))
    # An equal mix of two queries brings the second one's pictures in.
    mixed = _search(
        api, shapes_collection, query={"a red circle": 1.0, "a blue square": 1.0}, top_k=6
    )
    assert any("blue" in c for c in _captions(mixed)), _captions(mixed)
    # A negative weight moves results away from that term.
    away = _search(
        api, shapes_collection, query={"a red circle": 1.0, "on the left": -0.5}, top_k=6
    )
    assert [h["id"] for h in away["hits"]] != [h["id"] for h in plain["hits"]]
    assert not any("on the left" in c for c in _captions(away))


def test_batch_queries_expand_and_weigh_each_text(api: Api, shapes_collection: str) -> None:
    body = {
        "queries": [{"text": "红色的圆形"}, {"text": {"a red circle": 1.0}}, {"text": "zzz"}],
        "expand": True,
        "top_k": 3,
    }
    r = api.client.post("/v1/search/batch", params={"collection": shapes_collection}, json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [len(x["expansions"]) for x in results] == [1, 0, 0]
    assert "red circle" in results[0]["hits"][0]["caption"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({}, "empty_query"),
        ({"a red circle": 0.0}, "invalid_weights"),
        ({"a red circle": 1.0, "a blue square": -2.0}, "invalid_weights"),
        # One term after normalisation (spaces), with weights summing to 0.
        ({"a red circle": 1.0, "a red  circle": -1.0}, "invalid_weights"),
        ({f"term {i}": 1.0 for i in range(17)}, "too_many_terms"),
        ({" ": 1.0}, "empty_text"),
    ],
)
def test_bad_weighted_queries_are_422_with_a_code(
    api: Api, shapes_collection: str, query: dict[str, float], code: str
) -> None:
    r = api.client.post(
        "/v1/search/text", params={"collection": shapes_collection}, json={"query": query}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


def test_non_numeric_and_non_finite_weights_are_refused(api: Api, shapes_collection: str) -> None:
    params = {"collection": shapes_collection}
    r = api.client.post("/v1/search/text", params=params, json={"query": {"a": "heavy"}})
    assert r.status_code == 422, r.text
    # Python's JSON reader takes NaN, Infinity and overflowing numbers: the use-case refuses.
    for raw in ("NaN", "Infinity", "-Infinity", "1e400"):
        r = api.client.post(
            "/v1/search/text",
            params=params,
            content='{"query": {"a red circle": ' + raw + "}}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_weight"
