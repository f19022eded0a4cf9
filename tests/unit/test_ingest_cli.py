"""``clipsearch ingest``: jobs through a real gateway (fake adapters, uvicorn on loopback),
the wait on a busy gateway, and refusals before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import noise

from clipsearch.cli import main


def test_folder_is_ingested_in_jobs_and_failures_listed(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pics = tmp_path / "pics"
    (pics / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.png", "sub/b.png", "c.png"]):
        (pics / name).write_bytes(noise(40 + i))
    (pics / "broken.png").write_bytes(b"not a picture")
    (pics / "notes.txt").write_text("not an image extension: not collected")
    captions = tmp_path / "captions.csv"
    captions.write_text("image_path,caption\na.png,a red circle\n")

    argv = ["ingest", str(pics), "--url", url, "--collection", "cli", "--per-job", "2"]
    code = main([*argv, "--captions", str(captions), "--metadata", '{"album": "x"}'])
    out, err = capsys.readouterr()
    assert code == 1  # one item failed
    result = json.loads(out)
    assert len(result["jobs"]) == 2  # 4 files, 2 per job
    assert {k: result[k] for k in ("total", "stored", "duplicate", "failed")} == {
        "total": 4,
        "stored": 3,
        "duplicate": 0,
        "failed": 1,
    }
    assert "  failed: broken.png: " in err
    hits = httpx.post(
        f"{url}/v1/search/text",
        params={"collection": "cli"},
        json={"query": "x", "filter": {"album": "x"}},
    ).json()["hits"]
    assert sorted(h["caption"] for h in hits) == ["", "", "a red circle"]


def test_a_busy_gateway_is_waited_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = {"error": {"code": "too_many_requests", "message": "later", "details": None}}
    accepted = {"job_id": "j1", "status": "queued", "total": 1, "existing": False, "url": "/"}
    answers = [
        httpx.Response(429, json=busy, headers={"Retry-After": "0"}),
        httpx.Response(202, json=accepted),
    ]
    counts = {"total": 1, "stored": 1, "duplicate": 0, "failed": 0, "pending": 0}
    view = {"job_id": "j1", "status": "done", "items": [], "counts": counts}
    posted: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posted.append(request.read())
            return answers.pop(0)
        return httpx.Response(200, json=view)

    real = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    pic = tmp_path / "one.png"
    pic.write_bytes(noise(1))
    assert main(["ingest", str(pic), "--url", "http://gw.test"]) == 0
    _, err = capsys.readouterr()
    assert "gateway busy; retrying in 0 s" in err
    assert len(posted) == 2
    # The retry sends the whole file again, read from its start.
    assert all(noise(1) in body for body in posted)


def test_refusals_before_sending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pic = tmp_path / "one.png"
    pic.write_bytes(noise(1))
    # Nothing listens on port 1: reaching the network would be an "unreachable" exit 1.
    gw = ["--url", "http://127.0.0.1:1"]
    assert main(["ingest", str(pic), *gw, "--metadata", "{not json"]) == 2
    assert "--metadata is not JSON" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "missing"), *gw]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["ingest", *gw]) == 2
    assert "nothing to ingest" in capsys.readouterr().err
    assert main(["ingest", str(pic), *gw]) == 1
    assert "cannot reach http://127.0.0.1:1" in capsys.readouterr().err
