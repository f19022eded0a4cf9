"""Paging through search results on each backend, with small limits set by settings:
pages of one query continue each other (no overlap, no gap, best first), the same page
twice is the same, and a page past ``CLIPSEARCH_MAX_SEARCH_DEPTH`` is refused with its code.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from tests.collections.conftest import BACKENDS, Api, backend_uri, pictures, suite_settings

MAX_TOP_K = 5
MAX_DEPTH = 20


@pytest.fixture(
    scope="module",
    params=BACKENDS,
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The suite's gateway, with a page of at most 5 hits and a depth of at most 20."""
    backend = str(request.param)
    tmp = tmp_path_factory.mktemp(f"paging-{backend}")
    uri = backend_uri(request, backend, tmp)
    settings = suite_settings(backend, tmp, uri, max_top_k=MAX_TOP_K, max_search_depth=MAX_DEPTH)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, settings, backend)


def _page(
    api: Api, collection: str, offset: int, top_k: int = MAX_TOP_K
) -> list[dict[str, object]]:
    body = {"query": "a red circle", "top_k": top_k, "offset": offset}
    r = api.client.post("/v1/search/text", params={"collection": collection}, json=body)
    assert r.status_code == 200, r.text
    hits: list[dict[str, object]] = r.json()["hits"]
    return hits


def test_pages_continue_each_other(api: Api, collection: str) -> None:
    pngs, captions = pictures(17, seed=31)
    ids = api.stored(pngs, captions, collection=collection)
    pages = [_page(api, collection, offset) for offset in range(0, MAX_DEPTH, MAX_TOP_K)]
    assert [len(p) for p in pages] == [5, 5, 5, 2]
    hits = [h for p in pages for h in p]
    assert sorted(str(h["id"]) for h in hits) == sorted(ids)  # every picture once
    scores = [float(h["score"]) for h in hits]  # type: ignore[arg-type]
    assert scores == sorted(scores, reverse=True)
    assert _page(api, collection, 5) == pages[1]  # the same page again is the same
    # A page of another size cuts the same ranking.
    assert [h["id"] for h in _page(api, collection, 3, top_k=4)] == [h["id"] for h in hits[3:7]]


@pytest.mark.parametrize(
    ("top_k", "offset", "code"),
    [
        (MAX_TOP_K + 1, 0, "top_k_too_large"),
        (0, 0, "invalid_input"),
        (MAX_TOP_K, MAX_DEPTH - MAX_TOP_K + 1, "search_too_deep"),
        (1, MAX_DEPTH, "search_too_deep"),
        (1, -1, "invalid_input"),
    ],
)
def test_limits(api: Api, collection: str, top_k: int, offset: int, code: str) -> None:
    api.stored(pictures(2, seed=32)[0], collection=collection)
    body = {"query": "a red circle", "top_k": top_k, "offset": offset}
    r = api.client.post("/v1/search/text", params={"collection": collection}, json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == code
    if code == "search_too_deep":
        assert err["details"]["max_search_depth"] == MAX_DEPTH
    # The deepest page allowed is answered.
    assert _page(api, collection, MAX_DEPTH - MAX_TOP_K) == []
