"""The CLI's gateway commands against a real loopback gateway (fake adapters): ingest
progress from the jobs' server-sent events, ``stats``, ``jobs ls|show|cancel``, ``delete``,
and missing local files (exit 2, nothing sent) versus gateway errors (exit 1, URL named)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from tests.helpers import noise

from clipsearch.cli import main
from clipsearch.client import Client, JobView
from clipsearch.client.sse import parse_events
from clipsearch.commands.progress import IngestProgress


@pytest.fixture(scope="module")
def job(url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One finished job in collection ``tools``: two pictures and a broken file."""
    pics = tmp_path_factory.mktemp("pics")
    for i in range(2):
        (pics / f"p{i}.png").write_bytes(noise(300 + i))
    (pics / "broken.png").write_bytes(b"not a picture")
    with Client(url, collection="tools") as gw:
        job_id = gw.ingest(sorted(pics.iterdir()))["job_id"]
        for _ in gw.job_events(job_id):
            pass
    return job_id


def test_ingest_follows_the_event_stream_not_polling(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        (tmp_path / f"i{i}.png").write_bytes(noise(200 + i))
    streamed: list[str] = []
    polled: list[dict[str, Any]] = []
    real_events, real_job = Client.job_events, Client.job

    def events(self: Client, job_id: str, **kw: Any) -> Iterator[JobView]:
        streamed.append(job_id)
        return real_events(self, job_id, **kw)

    def job(self: Client, job_id: str, **kw: Any) -> JobView:
        polled.append(kw)
        return real_job(self, job_id, **kw)

    monkeypatch.setattr(Client, "job_events", events)
    monkeypatch.setattr(Client, "job", job)
    code = main(["ingest", str(tmp_path), "--url", url, "--collection", "sse", "--per-job", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["stored"] == 3
    assert streamed == result["jobs"]  # each of the 2 jobs followed through its events
    assert len(streamed) == 2
    assert polled == []  # no GET /v1/jobs/{id} while following
    # stdout is not a terminal here: plain lines, the last one final.
    lines = [ln for ln in err.splitlines() if ln.startswith("ingest: ")]
    assert lines, err
    assert lines[-1].startswith("ingest: 3/3 done, 0 failed")
    assert "\x1b[" not in err  # no terminal escapes in a log


def test_progress_bar_on_a_terminal_has_rate_and_eta() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=140)
    counts = {"total": 4, "stored": 1, "duplicate": 0, "failed": 1, "pending": 2}
    view: Any = {"job_id": "j", "counts": counts}
    with IngestProgress(4, bar=True, console=console) as progress:
        progress.update(view)
        assert progress.done == 2
    text = buf.getvalue()
    assert "2/4" in text
    assert "ETA" in text
    assert "1 failed" in text
    assert "img/s" in text


def test_plain_progress_is_throttled_but_ends_with_the_final_line() -> None:
    buf = io.StringIO()
    progress = IngestProgress(10, bar=False, out=buf)
    for done in range(1, 11):
        counts = {"total": 10, "stored": done, "duplicate": 0, "failed": 0, "pending": 10 - done}
        progress.update({"job_id": "j", "counts": counts}, final=done == 10)  # type: ignore[typeddict-item]
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2  # the first, then (after less than a second) only the final one
    assert lines[-1].startswith("ingest: 10/10 done")


def test_sse_parser() -> None:
    stream = [
        ": keep-alive",
        "event: progress",
        'data: {"a": 1}',
        "",
        "",
        'data: {"b":',
        "data: 2}",
        "",
        "event: end",
        'data: {"c": 3}',
    ]
    assert list(parse_events(stream)) == [
        ("progress", {"a": 1}),
        ("message", {"b": 2}),
        ("end", {"c": 3}),
    ]


def test_job_events_reconnects_after_expired() -> None:
    view = {"job_id": "j", "status": "running"}
    data = json.dumps(view)
    bodies = [
        f"event: progress\ndata: {data}\n\nevent: expired\ndata: {data}\n\n",
        f"event: end\ndata: {json.dumps({**view, 'status': 'done'})}\n\n",
    ]
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(
            200, text=bodies.pop(0), headers={"content-type": "text/event-stream"}
        )

    http = httpx.Client(transport=httpx.MockTransport(handler))
    seen = [v["status"] for v in Client("http://gw.test", http=http).job_events("j")]
    assert seen == ["running", "running", "done"]
    assert len(calls) == 2
    assert calls[0].startswith("http://gw.test/v1/jobs/j/events")


def test_stats(url: str, job: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("encoder  fake  fake-model")
    assert "health ok" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("tools "))
    assert row.split()[1:3] == ["2", "0"]  # 2 images, no texts
    assert main(["stats", "--url", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["collections"]["tools"]["counts"]["images"] == 2


def test_jobs_ls_show_cancel(url: str, job: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--url", url]) == 0  # bare `jobs` is `jobs ls`
    assert job in capsys.readouterr().out
    assert main(["jobs", "--url", url, "ls", "--status", "partial", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert job in [v["job_id"] for v in listed]
    assert all(v["status"] == "partial" for v in listed)
    assert main(["jobs", "show", job, "--url", url]) == 0
    out = capsys.readouterr().out
    assert "status     partial" in out
    assert "2/3 done" not in out
    assert "3/3 done: 2 stored, 0 duplicate, 1 failed" in out
    assert "  failed: broken.png: " in out
    assert main(["jobs", "cancel", job, "--url", url]) == 0
    assert "already ended, partial" in capsys.readouterr().out
    assert main(["jobs", "show", "nope", "--url", url]) == 1
    err = capsys.readouterr().err
    assert "404 job_not_found" in err
    assert f"{url}/v1/jobs/nope" in err  # the URL it tried


def test_delete(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Client(url, collection="del") as gw:
        (item,) = gw.add_images([("d.png", noise(400))])
    image_id = str(item["id"])
    assert main(["delete", image_id, "--url", url, "--collection", "del"]) == 0
    assert f"deleted {image_id}" in capsys.readouterr().out
    with Client(url, collection="del") as gw, pytest.raises(Exception, match="404"):
        gw.get_image(image_id)
    assert main(["delete", image_id, "--url", url, "--collection", "del", "--json"]) == 1
    err = capsys.readouterr().err
    assert "404" in err
    assert "1 of 1 not deleted" in err


def test_missing_local_files_are_not_blamed_on_the_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = ["--url", "http://127.0.0.1:1"]  # nothing listens: reaching it would be exit 1
    assert main(["search", "--image", str(tmp_path / "nonexist.png"), *gw]) == 2
    err = capsys.readouterr().err
    assert f"no such file: {tmp_path / 'nonexist.png'}" in err
    assert "gateway" not in err
    assert main(["search", "--image", str(tmp_path), *gw]) == 2
    assert "not a file" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "nonexist"), *gw]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    pic = tmp_path / "p.png"
    pic.write_bytes(noise(1))
    assert main(["ingest", str(pic), "--captions", str(tmp_path / "no.csv"), *gw]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["ingest", str(pic), "--urls", str(tmp_path / "no.txt"), *gw]) == 2
    assert "no such file" in capsys.readouterr().err


def test_gateway_errors_name_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "x", "--url", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach http://127.0.0.1:1" in err
    assert "POST http://127.0.0.1:1/v1/search/text" in err
    assert main(["stats", "--url", "nope://x"]) == 2
    assert "not a gateway URL" in capsys.readouterr().err


def test_client_similarity(url: str) -> None:
    with Client(url, collection="sim") as gw:
        (item,) = gw.add_images([("s.png", noise(500))], captions=["a caption"])
        by_file = gw.similarity(["a caption", "other words"], ("s.png", noise(500)))
        by_id = gw.similarity(["a caption", "other words"], image_id=str(item["id"]))
        with pytest.raises(ValueError, match="not both"):
            gw.similarity(["x"])
    assert by_file["image_id"] == by_id["image_id"] == item["id"]
    assert [s["text"] for s in by_file["scores"]] == ["a caption", "other words"]
    for a, b in zip(by_file["scores"], by_id["scores"], strict=True):
        assert a["cosine"] == pytest.approx(b["cosine"], abs=1e-6)
    assert sum(s["softmax"] for s in by_id["scores"]) == pytest.approx(1.0)


def test_similarity_command(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pic = tmp_path / "s.png"
    pic.write_bytes(noise(600))
    assert main(["similarity", "--image", str(pic), "a caption", "other", "--url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["cosine", "softmax", "text"]
    assert [ln.split(maxsplit=2)[2] for ln in lines[1:]] == ["a caption", "other"]
    argv = ["similarity", "--image-id", "0" * 64, "x", "--url", url, "--json"]
    assert main(argv) == 1
    assert "404 image_not_found" in capsys.readouterr().err
    assert main(["similarity", "--image", str(tmp_path / "none.png"), "x", "--url", url]) == 2
    assert "no such file" in capsys.readouterr().err
