"""``clipsearch search``: request shape, table output and error reporting (mock transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from clipsearch.cli import main

HITS = {
    "hits": [
        {"id": "a" * 64, "score": 0.91234, "caption": "a red circle", "source": "x.png"},
        {"id": "b" * 64, "score": 0.5, "caption": "", "source": "y.png"},
    ],
    "took_ms": 3.2,
}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.params.get("collection") == "missing":
            body = {"error": {"code": "unknown_collection", "message": "unknown", "details": None}}
            return httpx.Response(404, json=body)
        return httpx.Response(200, json=HITS)

    real = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    return requests


def test_text_search_prints_table(seen: list[httpx.Request], capsys: Any) -> None:
    code = main(["search", "a red circle", "--url", "http://gw.test", "--top-k", "2"])
    assert code == 0
    (req,) = seen
    assert str(req.url) == "http://gw.test/v1/search/text"
    assert json.loads(req.content) == {"query": "a red circle", "target": "images", "top_k": 2}
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["1", "0.9123", "a" * 12, "a", "red", "circle"]
    assert out[2].strip() == f"http://gw.test/v1/images/{'a' * 64}/file"  # to open the hit
    assert out[3].split() == ["2", "0.5000", "b" * 12, "y.png"]  # no caption: the source
    assert "2 hits" in out[-1]


def test_image_search_uploads_file(seen: list[httpx.Request], tmp_path: Path) -> None:
    pic = tmp_path / "q.png"
    pic.write_bytes(b"\x89PNG fake")
    code = main(["search", "--image", str(pic), "--target", "texts", "--url", "http://gw.test"])
    assert code == 0
    (req,) = seen
    assert req.url.path == "/v1/search/image"
    assert b"\x89PNG fake" in req.content
    assert b'name="target"' in req.content


def test_paging_score_filter_and_json(seen: list[httpx.Request], capsys: Any) -> None:
    argv = ["search", "x", "--url", "http://gw.test", "--offset", "10", "--min-score", "0.2"]
    assert main([*argv, "--filter", '{"album": "home"}', "--json"]) == 0
    (req,) = seen
    assert json.loads(req.content) == {
        "query": "x",
        "target": "images",
        "top_k": 10,
        "offset": 10,
        "min_score": 0.2,
        "filter": {"album": "home"},
    }
    assert json.loads(capsys.readouterr().out) == HITS  # the answer as it came
    assert main([*argv, "--filter", "{nope"]) == 2
    assert "--filter is not JSON" in capsys.readouterr().err
    assert main([*argv, "--filter", "[1]"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err
    assert len(seen) == 1  # refused before sending


def test_hit_urls_follow_the_gateway_links(seen: list[httpx.Request], capsys: Any) -> None:
    from clipsearch.commands.search import hit_url

    base = "http://gw.test"
    linked: Any = {"id": "t1", "text": "a caption", "image_url": "/v1/images/i1/file?collection=c"}
    assert hit_url(base, linked) == "http://gw.test/v1/images/i1/file?collection=c"
    text_of_image: Any = {"id": "t2", "text": "x", "image_id": "i2"}
    assert hit_url(base, text_of_image) == "http://gw.test/v1/images/i2/file"
    bare_text: Any = {"id": "t3", "text": "x"}
    assert hit_url(base, bare_text) == ""


def test_errors(seen: list[httpx.Request], capsys: Any) -> None:
    assert main(["search"]) == 2
    assert main(["search", "x", "--url", "http://gw.test", "--collection", "missing"]) == 1
    err = capsys.readouterr().err
    assert "unknown_collection" in err
    assert "http://gw.test/v1/search/text?collection=missing" in err  # the URL it tried


def test_expand_is_sent_and_the_expansions_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    used = {"text": "金毛", "matched": "query", "terms": [], "expansions": ["golden retriever"]}
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={**HITS, "expansions": [used]})

    real = httpx.Client
    monkeypatch.setattr(
        httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(handler), **kw)
    )
    assert main(["search", "金毛", "--expand", "--url", "http://gw.test"]) == 0
    assert json.loads(requests[0].content)["expand"] is True
    assert capsys.readouterr().out.splitlines()[-1] == "expanded '金毛' -> 'golden retriever'"
