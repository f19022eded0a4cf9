"""``clipsearch collections ls|show|create|delete|migrate`` and the client's collection
methods against a real loopback gateway (the shapes model and a second one, Milvus Lite):
what each verb prints and sends, idempotent create, bad input (exit 2, nothing sent), the
gateway's refusals (exit 1, code named), and a migration followed through the job's
server-sent events (not polling) to the switch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import SHAPES_MODEL, noise, second_model

from clipsearch.api.app import create_app
from clipsearch.bench.loopback import serve
from clipsearch.cli import main
from clipsearch.client import Client, GatewayError, JobView
from clipsearch.core.config import Settings


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("cli-collections")
    model_b = second_model(tmp / "shapes-v2")
    settings = Settings(
        _env_file=None,
        data_dir=tmp,
        model_path=SHAPES_MODEL,
        milvus_uri=str(tmp / "milvus.db"),
        extra_models=[str(model_b)],
        migration_grace_s=0.5,
    )
    with serve(create_app(settings), name="collections-gateway") as base:
        yield base


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_client_create_is_idempotent_and_mismatch_is_refused(url: str) -> None:
    with Client(url) as gw:
        info, created = gw.create_collection("cl_a", index_type="FLAT")
        assert created
        assert info["name"] == "cl_a"
        assert info["index_type"] == "FLAT"
        again, created = gw.create_collection("cl_a", index_type="FLAT")
        assert not created
        assert again["fingerprint"] == info["fingerprint"]
        with pytest.raises(GatewayError) as exc:
            gw.create_collection("cl_a", index_type="HNSW", index_params={"M": 8})
        assert (exc.value.status, exc.value.code) == (409, "collection_spec_mismatch")
        assert "cl_a" in [c["name"] for c in gw.collections()]
        assert gw.collection_info("cl_a")["counts"] == {"images": 0, "texts": 0}
        gone = gw.delete_collection("cl_a")
        assert gone["deleted"]
        assert gone["images"] == 0
        with pytest.raises(GatewayError) as exc:
            gw.collection_info("cl_a")
        assert (exc.value.status, exc.value.code) == (404, "unknown_collection")


def test_ls_show_create_delete(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "collections", "create", "cl_b", "--param", "M=8", "--url", url)
    assert code == 0, err
    assert out.startswith("cl_b: created")
    assert "HNSW" in out
    assert '"M": 8' in out
    code, out, _ = cli(capsys, "collections", "create", "cl_b", "--param", "M=8", "--url", url)
    assert out.startswith("cl_b: exists with this spec")
    code, out, _ = cli(capsys, "collections", "--url", url)  # bare: ls
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["collection", "model"]
    assert any(r.split()[0] == "cl_b" and "shapes-tiny" in r for r in rows), out
    code, out, _ = cli(capsys, "collections", "show", "cl_b", "--url", url, "--json")
    assert json.loads(out)["index_params"]["M"] == 8
    code, out, _ = cli(capsys, "collections", "delete", "cl_b", "--url", url)
    assert (code, out.strip()) == (0, "cl_b: deleted (0 images, 0 files removed, 0 jobs cancelled)")
    code, _, err = cli(capsys, "collections", "show", "cl_b", "--url", url)
    assert code == 1
    assert "404 unknown_collection" in err
    assert url in err


def test_bad_input_is_refused_before_sending(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "collections", "create", "cl_c", "--param", "M", "--url", url)
    assert code == 2
    assert "K=INT" in err
    code, _, err = cli(capsys, "collections", "create", "cl_c", "--param", "M=x", "--url", url)
    assert code == 2
    with Client(url) as gw:
        assert "cl_c" not in [c["name"] for c in gw.collections()]
    code, _, err = cli(capsys, "collections", "create", "bad-name!", "--url", url)
    assert code == 1
    assert "422" in err
    code, _, err = cli(capsys, "collections", "migrate", "nope", "--model", "x", "--url", url)
    assert code == 1
    assert "404 unknown_collection" in err


def test_migrate_follows_the_event_stream(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(url, collection="cl_m") as gw:
        gw.create_collection("cl_m")
        items = gw.add_images([("a.png", noise(120)), ("b.png", noise(121))], captions=["a", "b"])
        assert all(i["status"] == "stored" for i in items)
    code, _, err = cli(
        capsys, "collections", "migrate", "cl_m", "--model", "shapes-tiny", "--url", url
    )
    assert code == 1
    assert "409 migration_not_needed" in err
    streamed: list[str] = []
    polled: list[str] = []
    real_events, real_job = Client.job_events, Client.job

    def events(self: Client, job_id: str, **kw: Any) -> Iterator[JobView]:
        streamed.append(job_id)
        return real_events(self, job_id, **kw)

    def job(self: Client, job_id: str, **kw: Any) -> JobView:
        polled.append(job_id)
        return real_job(self, job_id, **kw)

    monkeypatch.setattr(Client, "job_events", events)
    monkeypatch.setattr(Client, "job", job)
    code, out, err = cli(
        capsys, "collections", "migrate", "cl_m", "--model", "shapes-tiny-v2", "--url", url
    )
    assert code == 0, err
    assert out.startswith("cl_m: migration done (job ")
    assert len(streamed) == 1
    assert polled == []
    lines = [ln for ln in err.splitlines() if ln.startswith("migrate: ")]
    assert lines, err
    assert lines[-1].startswith("migrate: 4/4 done, 0 failed"), err  # 2 images, 2 texts
    with Client(url) as gw:
        assert gw.collection_info("cl_m")["model_name"] == "shapes-tiny-v2"
