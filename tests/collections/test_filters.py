"""The filter grammar through the API, on each backend: every operator in text, image and
batch search (JSON and form), typed, and bad filters refused with ``invalid_filter``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.collections.conftest import Api, pictures

INJECTION = 'x" or id != "'
METADATA: list[dict[str, Any]] = [
    {"year": 2019, "tag": "cat", "gps": True},  # 0
    {"year": 2020, "tag": "dog", "album": "x"},  # 1
    {"year": 2023.5, "tag": "cat", "album": "y", "gps": False},  # 2
    {"year": 2024, "tag": INJECTION},  # 3
    {"year": "2021", "tag": "bird", "gps": None},  # 4: a year as a string
    {"year": True, "album": "x"},  # 5: a boolean where a number is elsewhere
]


@pytest.fixture(scope="module")
def corpus(api: Api) -> tuple[str, list[str]]:
    name = f"t_filters_{api.backend}"
    pngs, caps = pictures(len(METADATA), seed=31)
    ids = api.stored(pngs, caps, collection=name, metadata=json.dumps(METADATA))
    return name, ids


CASES: list[tuple[dict[str, Any], set[int]]] = [
    ({"year": {"gte": 2020, "lt": 2024}}, {1, 2}),  # never "2021" nor true
    ({"year": {"gt": 2023}}, {2, 3}),
    ({"year": {"lte": 2019}}, {0}),
    ({"year": {"eq": True}}, {5}),
    ({"year": 1}, set()),  # true is not 1
    ({"tag": {"in": ["cat", "bird"]}}, {0, 2, 4}),
    ({"tag": {"nin": ["cat", "bird"]}}, {1, 3, 5}),  # 5 has no tag: it matches
    ({"album": {"ne": "x"}}, {0, 2, 3, 4}),
    ({"gps": {"exists": True}}, {0, 2}),  # null is not there
    ({"gps": {"exists": False}}, {1, 3, 4, 5}),
    ({"gps": {"exists": True}, "tag": "cat", "year": {"gt": 2020}}, {2}),
    ({"tag": INJECTION}, {3}),
    ({"tag": {"ne": INJECTION}, "year": {"gte": 2024}}, set()),
    ({"album": ["x", "y"]}, {1, 2, 5}),
]


@pytest.mark.parametrize(("flt", "expected"), CASES)
def test_search_filters(
    api: Api, corpus: tuple[str, list[str]], flt: dict[str, Any], expected: set[int]
) -> None:
    name, ids = corpus
    want = {ids[i] for i in expected}
    params = {"collection": name}
    body = {"query": "a shape", "top_k": 20, "filter": flt}
    r = api.client.post("/v1/search/text", params=params, json=body)
    assert r.status_code == 200, r.text
    assert {h["id"] for h in r.json()["hits"]} == want
    # The same grammar in batch search and image search (JSON and form).
    batch = {"queries": [{"text": "a shape"}, {"image_id": ids[0]}], "top_k": 20, "filter": flt}
    r = api.client.post("/v1/search/batch", params=params, json=batch)
    assert r.status_code == 200, r.text
    assert [{h["id"] for h in res["hits"]} for res in r.json()["results"]] == [want, want]
    png = pictures(1, seed=99)[0][0]
    r = api.client.post(
        "/v1/search/image",
        params=params,
        files={"file": ("q.png", png, "image/png")},
        data={"filter": json.dumps(flt), "top_k": "20"},
    )
    assert r.status_code == 200, r.text
    assert {h["id"] for h in r.json()["hits"]} == want


@pytest.mark.parametrize(
    "flt",
    [
        {"year": {"$gt": 1}},  # unknown operator
        {"year": {"between": [1, 2]}},
        {"year": {"gte": "2020"}},  # ranges take numbers only
        {"year": {"lt": True}},
        {"gps": {"exists": 1}},
        {"tag": {"in": "cat"}},
        {"tag": {"nin": []}},
        {"tag": {"eq": None}},
        {"tag": {}},
        {"tag": {"in": [["nested"]]}},
        {'a"] or 1==1 or metadata["b': {"ne": 1}},
    ],
)
def test_bad_filters_are_422_invalid_filter(
    api: Api, corpus: tuple[str, list[str]], flt: dict[str, Any]
) -> None:
    name, ids = corpus
    params = {"collection": name}
    r = api.client.post("/v1/search/text", params=params, json={"query": "a", "filter": flt})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_filter"
    body = {"queries": [{"image_id": ids[0]}], "filter": flt}
    r = api.client.post("/v1/search/batch", params=params, json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_filter")


def test_docs_show_the_grammar(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schema = spec["components"]["schemas"]["TextSearchRequest"]["properties"]["filter"]
    assert {"gte": 2020, "lt": 2024} in schema["examples"][1].values()
    ops = schema["additionalProperties"]["anyOf"][2]["properties"]
    assert set(ops) == {"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "exists"}
