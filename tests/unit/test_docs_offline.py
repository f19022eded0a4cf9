"""/docs and /redoc work offline: their HTML names only same-origin URLs, and each asset it
names is served by the gateway (from the fastapi-offline package) with its content type."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clipsearch.api.app import create_app
from clipsearch.core.config import Settings
from clipsearch.core.keys import Scope, make_entry, new_key


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)


def _client(tmp_path: Path, **kw: object) -> TestClient:
    cfg = Settings(_env_file=None, data_dir=tmp_path, **kw)  # type: ignore[arg-type]
    return TestClient(create_app(cfg), base_url="http://127.0.0.1:8000")


_KINDS = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


@pytest.mark.parametrize(("page", "marker"), [("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc")])
def test_docs_pages_reference_only_their_own_assets(tmp_path: Path, page: str, marker: str) -> None:
    c = _client(tmp_path)
    r = c.get(page)
    assert r.status_code == 200
    assert marker in r.text
    assert "http://" not in r.text
    assert "https://" not in r.text  # no CDN, no Google Fonts, no validator badge
    refs = _Refs()
    refs.feed(r.text)
    assert len(refs.urls) >= 2  # the script and the icon at least
    for url in refs.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = c.get(url)
        assert asset.status_code == 200, url
        kind = next(v for k, v in _KINDS.items() if url.endswith(k))
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 1000 or url.endswith(".png"), url
    csp = r.headers["Content-Security-Policy"]
    assert "cdn.jsdelivr.net" not in csp
    assert "https:" not in csp


def test_swagger_assets_are_the_real_bundles(tmp_path: Path) -> None:
    c = _client(tmp_path)
    assert "SwaggerUIBundle" in c.get("/docs/assets/swagger-ui-bundle.js").text
    assert ".swagger-ui" in c.get("/docs/assets/swagger-ui.css").text
    assert "Redoc" in c.get("/docs/assets/redoc.standalone.js").text
    missing = c.get("/docs/assets/../../etc/passwd")
    assert missing.status_code == 404
    other = c.get("/docs/assets/app.js")
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"


def test_assets_open_even_when_docs_need_a_key(tmp_path: Path) -> None:
    entry = make_entry(new_key(), Scope.read, "r").line()
    c = _client(tmp_path, api_keys=entry, docs_open=False)
    assert c.get("/docs").status_code == 401
    assert c.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
