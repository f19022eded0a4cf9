"""The web app's files as the gateway serves them: every module the page imports is there
with a script type and the page's CSP, and nothing else under ``/web/`` is served."""

from __future__ import annotations

import re

import pytest

from clipsearch.api.security import PAGE_CSP
from tests.api.conftest import Gateway

IMPORT = re.compile(r'from "\./([a-z]+\.js)"')


def test_every_imported_module_is_served(gateway: Gateway) -> None:
    c = gateway.client
    seen, todo = set[str](), ["app.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        r = c.get(f"/web/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith("text/javascript"), name
        assert r.headers["Content-Security-Policy"] == PAGE_CSP
        assert ".innerHTML" not in r.text, name  # API text is never parsed as HTML
        todo += IMPORT.findall(r.text)
    assert {"search.js", "library.js", "ingest.js", "stats.js", "api.js"} <= seen


@pytest.mark.parametrize(
    "name", ["index.html", "nope.js", "App.js", "app.js.map", "..%2Fapi%2Fapp.py", "x.py"]
)
def test_other_names_are_404(gateway: Gateway, name: str) -> None:
    r = gateway.client.get(f"/web/{name}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_api_key_goes_in_the_header_the_api_reads(gateway: Gateway) -> None:
    # EventSource cannot send headers: the app reads job events with fetch and the key header.
    api = gateway.client.get("/web/api.js").text
    assert '"X-API-Key"' in api
    assert "new EventSource" not in api
    assert "sessionStorage" in api
    assert "localStorage" not in api
