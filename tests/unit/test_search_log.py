"""The search log: one JSON line per query with what was asked and found, rotated at its
size, off by default, and never the reason a search fails."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.unit.usecase_fakes import FakeBlobs, FakeEncoder, FakeStore, picture

from clipsearch.api.app import create_app
from clipsearch.bootstrap import build_search_log
from clipsearch.core.config import Settings
from clipsearch.store.search_log import RotatingSearchLog
from clipsearch.usecases.common import image_id_of
from clipsearch.usecases.search_log import NO_SEARCH_LOG


def _app(tmp_path: Path, **kw: Any) -> Any:
    cfg = Settings(_env_file=None, data_dir=tmp_path / "data", **kw)
    return create_app(cfg, encoder=FakeEncoder(), store=FakeStore(), blobs=FakeBlobs())


def _client(app: Any) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:8000")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_one_line_per_query_with_what_was_asked_and_found(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "search.jsonl"
    pics = [picture(i) for i in range(3)]
    with _client(_app(tmp_path, search_log=log)) as c:
        files = [("files", (f"{i}.jpg", p, "image/jpeg")) for i, p in enumerate(pics)]
        assert c.post("/v1/images", files=files, data={"captions": ["a", "b", "c"]}).is_success
        text = c.post("/v1/search/text", json={"query": "a  red circle", "top_k": 2}).json()
        by_file = c.post("/v1/search/image", files={"file": ("q.jpg", pics[0], "image/jpeg")})
        assert by_file.status_code == 200
        b64 = base64.b64encode(pics[1]).decode()
        batch = {"queries": [{"image_base64": b64}, {"image_id": image_id_of(pics[2])}]}
        assert c.post("/v1/search/batch", json={**batch, "target": "texts"}).status_code == 200
    # The app has stopped: its log is closed, every line on disk.
    lines = _lines(log)
    assert len(lines) == 4  # the batch of two is two lines
    first = lines[0]
    assert first["query"] == "a  red circle"  # as the client sent it
    assert first["collection"] == "default"
    assert first["target"] == "images"
    assert first["top_ids"] == [h["id"] for h in text["hits"]]
    assert first["top_scores"] == pytest.approx([h["score"] for h in text["hits"]], abs=1e-5)
    assert first["hits"] == 2
    assert first["latency_ms"] > 0
    assert first["expansions"] is None
    assert first["time"].endswith("Z")
    assert lines[1]["image_sha256"] == image_id_of(pics[0])
    assert "query" not in lines[1]
    assert lines[2]["image_sha256"] == image_id_of(pics[1])  # of the decoded bytes
    assert lines[3]["image_id"] == image_id_of(pics[2])
    assert {ln["batch"] for ln in lines[2:]} == {2}
    assert {ln["target"] for ln in lines[2:]} == {"texts"}


def test_rotated_at_its_size(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    log = RotatingSearchLog(path, max_bytes=2048, backups=2)
    for i in range(200):
        log.write({"n": i, "pad": "x" * 40})
    log.close()
    assert path.is_file()
    assert (tmp_path / "s.jsonl.1").is_file()
    assert (tmp_path / "s.jsonl.2").is_file()
    assert not (tmp_path / "s.jsonl.3").exists()  # only `backups` old files are kept
    for f in (path, tmp_path / "s.jsonl.1", tmp_path / "s.jsonl.2"):
        assert f.stat().st_size <= 2048
    newest = _lines(path)
    assert newest[-1]["n"] == 199
    older = _lines(tmp_path / "s.jsonl.1")
    assert older[-1]["n"] == newest[0]["n"] - 1  # nothing lost between files


def test_off_by_default(tmp_path: Path) -> None:
    cfg = Settings(_env_file=None, data_dir=tmp_path)
    assert cfg.search_log is None
    assert build_search_log(cfg) is NO_SEARCH_LOG
    assert Settings(_env_file=None, search_log="").search_log is None  # empty = off
    with _client(_app(tmp_path)) as c:
        assert c.post("/v1/search/text", json={"query": "x"}).status_code == 200
    assert not [p for p in tmp_path.rglob("*") if "log" in p.name]


def test_a_failing_log_never_fails_a_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unwritable = tmp_path / "a-folder"
    unwritable.mkdir()  # the log's path is a folder: every write fails
    with _client(_app(tmp_path, search_log=unwritable)) as c:
        for _ in range(3):
            assert c.post("/v1/search/text", json={"query": "x"}).status_code == 200

    class Broken:
        enabled = True

        def write(self, entry: Mapping[str, Any]) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            return None

    monkeypatch.setattr("clipsearch.api.app.build_search_log", lambda cfg: Broken())
    with _client(_app(tmp_path)) as c:
        r = c.post("/v1/search/text", json={"query": "x"})
        assert r.status_code == 200, r.text


def test_the_file_adapter_counts_lost_lines(tmp_path: Path) -> None:
    log = RotatingSearchLog(tmp_path, max_bytes=4096, backups=1)  # a folder: cannot open
    log.write({"n": 1})
    log.write({"n": 2})
    log.flush()
    assert log.failures == 2
    log.close()
    log.close()  # twice is harmless


def test_expanded_and_weighted_queries_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "search.jsonl"
    with _client(_app(tmp_path, search_log=log)) as c:
        files = [("files", ("0.jpg", picture(0), "image/jpeg"))]
        assert c.post("/v1/images", files=files).is_success
        body = {"query": "金毛", "expand": True}
        assert c.post("/v1/search/text", json=body).status_code == 200
        body = {"query": {"a red circle": 1.0, "on the left": -0.3}}
        assert c.post("/v1/search/text", json=body).status_code == 200
        assert c.post("/v1/search/text", json={"query": "zzz", "expand": True}).is_success
    expanded, weighted, unmatched = _lines(log)
    assert expanded["query"] == "金毛"
    assert expanded["expansions"] == ["golden retriever dog", "a photo of a golden retriever"]
    assert weighted["query"] == {"a red circle": 1.0, "on the left": -0.3}
    assert weighted["expansions"] is None
    assert unmatched["expansions"] is None  # asked, but nothing in the dictionary
