"""Keys over real HTTP (uvicorn on loopback, its access log on): the client and the CLI send
the key, and neither uvicorn's access log nor the app's log ever shows it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from clipsearch import cli
from clipsearch.api.app import create_app
from clipsearch.bench.loopback import serve
from clipsearch.client import Client, GatewayError
from clipsearch.core.config import Settings, get_settings
from clipsearch.core.keys import Scope, make_entry, new_key
from tests.helpers import SHAPES_MODEL

KEY = new_key()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("http-keys"),
        model_path=SHAPES_MODEL,
        api_keys=[make_entry(KEY, Scope.write, "cli").line()],
    )
    # log_config=None: uvicorn's loggers propagate to the root logger, where caplog listens.
    with serve(create_app(settings), access_log=True, log_config=None, log_level="info") as base:
        yield base


def test_client_sends_the_key_and_logs_never_show_it(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        with Client(url) as anonymous, pytest.raises(GatewayError) as info:
            anonymous.stats()
        assert (info.value.status, info.value.code) == (401, "missing_api_key")
        with Client(url, api_key=KEY) as gw:
            assert gw.add_texts(["a red circle"])[0]["status"] == "stored"
            assert gw.search_text("a red circle", target="texts")["hits"]
        with Client(url, api_key=KEY + "x") as wrong, pytest.raises(GatewayError) as info:
            wrong.stats()
        assert info.value.code == "invalid_api_key"
        assert KEY not in str(info.value)
    access = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert len(access) >= 4  # the access log was on and saw the requests
    assert KEY not in caplog.text


@pytest.mark.usefixtures("clean_settings")
def test_cli_sends_clipsearch_api_key(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["search", "a red circle", "--target", "texts", "--url", url]
    assert cli.main(args) == 1
    assert "401 missing_api_key" in capsys.readouterr().err
    monkeypatch.setenv("CLIPSEARCH_API_KEY", KEY)
    get_settings.cache_clear()
    assert cli.main(args) == 0
    assert "hits" in capsys.readouterr().out
