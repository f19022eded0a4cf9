"""Secure by default and browser guards: start-up refusal off loopback without keys, CORS,
the Host allowlist (DNS rebinding), the cross-site guard (CSRF), security headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from clipsearch import cli
from clipsearch.api.app import StartupError, create_app
from clipsearch.api.security import PAGE_CSP
from clipsearch.core.config import Settings
from clipsearch.core.keys import Scope, make_entry, new_key
from tests.api.conftest import Gateway


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "gateway.internal"])
def test_no_keys_off_loopback_refuses_to_start(tmp_path: Path, host: str) -> None:
    with pytest.raises(StartupError) as info:
        create_app(_settings(tmp_path, host=host))
    message = str(info.value)
    assert "\n" not in message
    assert "CLIPSEARCH_API_KEYS" in message
    assert "CLIPSEARCH_AUTH=off" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_no_keys_on_loopback_serves(tmp_path: Path, host: str) -> None:
    create_app(_settings(tmp_path, host=host))


def test_auth_off_or_keys_let_it_start_on_all_interfaces(tmp_path: Path) -> None:
    create_app(_settings(tmp_path, host="0.0.0.0", auth="off"))
    entry = make_entry(new_key(), Scope.read, "r").line()
    create_app(_settings(tmp_path, host="0.0.0.0", api_keys=entry))
    with pytest.raises(StartupError, match="AUTH=off but API keys"):
        create_app(_settings(tmp_path, host="0.0.0.0", auth="off", api_keys=entry))
    with pytest.raises(StartupError, match="not scope:name:scrypt"):
        create_app(_settings(tmp_path, api_keys="write:x:plaintext"))


@pytest.mark.usefixtures("clean_settings")
def test_serve_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "refusing to serve on 0.0.0.0 without API keys" in err


def test_star_with_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="CORS_ORIGINS=\\* with"):
        Settings(_env_file=None, cors_origins="*", cors_allow_credentials=True)


def test_cors_preflight_allowed_and_denied(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, cors_origins="https://app.example"))
    client = TestClient(app)  # middleware only: no lifespan needed
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
    r = client.options("/v1/search/text", headers={"Origin": "https://app.example", **ask})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "x-api-key" in r.headers["Access-Control-Allow-Headers"].lower()
    r = client.options("/v1/search/text", headers={"Origin": "https://evil.example", **ask})
    assert r.status_code == 400
    assert "Access-Control-Allow-Origin" not in r.headers
    # Without CORS origins there is no CORS at all: no header on any answer.
    r = TestClient(create_app(_settings(tmp_path))).get(
        "/healthz", headers={"Origin": "https://app.example"}
    )
    assert "Access-Control-Allow-Origin" not in r.headers


def test_host_allowlist_refuses_rebinding(tmp_path: Path) -> None:
    # The loopback default (what `make run` gets), set explicitly since tests widen it.
    app = create_app(_settings(tmp_path, allowed_hosts="127.0.0.1,localhost,::1"))
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    assert client.get("/").status_code == 200
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8000"}).status_code == 200
    r = client.get("/", headers={"Host": "evil.example:8000"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_host"
    # Probes answer whatever the Host (an orchestrator sends the pod's address).
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
    assert _settings(tmp_path).model_copy(update={"allowed_hosts": []}).resolved_allowed_hosts == [
        "127.0.0.1",
        "localhost",
        "::1",
    ]
    assert _settings(tmp_path, host="0.0.0.0", allowed_hosts="").resolved_allowed_hosts == ["*"]
    wildcard = create_app(_settings(tmp_path, allowed_hosts="*.example.org"))
    wc = TestClient(wildcard, base_url="http://search.example.org")
    assert wc.get("/").status_code == 200
    assert wc.get("/", headers={"Host": "example.org.evil"}).status_code == 400


def test_cross_site_post_is_refused_same_origin_is_not(gateway: Gateway) -> None:
    c = gateway.client
    body = {"query": "a red circle", "top_k": 3}
    for origin in ["https://evil.example", "null", "http://testserver.evil"]:
        r = c.post("/v1/search/text", json=body, headers={"Origin": origin})
        assert r.status_code == 403, origin
        assert r.json()["error"]["code"] == "cross_site_request"
    files = [("files", ("a.png", b"x", "image/png"))]
    r = c.post("/v1/images", files=files, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403  # the form post a page could send without a preflight
    assert c.post("/v1/search/text", json=body, headers={"Origin": "http://testserver"}).is_success
    assert c.post("/v1/search/text", json=body).is_success  # no Origin: not a browser
    # Safe methods are never refused (a page can embed thumbnails).
    assert c.get("/v1/stats", headers={"Origin": "https://evil.example"}).status_code == 200


def test_allowed_cors_origin_may_post(tmp_path: Path) -> None:
    client = TestClient(create_app(_settings(tmp_path, cors_origins="https://app.example")))
    r = client.post("/v1/nothing", json={}, headers={"Origin": "https://app.example"})
    assert r.status_code == 404  # past the guard
    r = client.post("/v1/nothing", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_security_headers_fit_the_page(gateway: Gateway) -> None:
    c = gateway.client
    page = c.get("/")
    assert page.status_code == 200
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert "frame-ancestors 'none'" in PAGE_CSP
    assert "unsafe-inline" not in PAGE_CSP
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # The page has nothing inline for the CSP to block: script and style are files it serves.
    html = page.text
    assert "<script>" not in html
    assert "<style>" not in html
    assert " style=" not in html
    assert " on" not in html.replace(" option", "")  # no inline event handlers
    for asset, kind in [("/web/app.js", "javascript"), ("/web/app.css", "css")]:
        r = c.get(asset)
        assert r.status_code == 200
        assert kind in r.headers["content-type"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert c.get("/web/index.html").status_code == 404
    api = c.get("/v1/stats")
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    docs = c.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
    assert "cdn.jsdelivr.net" not in docs.headers["Content-Security-Policy"]  # served here
