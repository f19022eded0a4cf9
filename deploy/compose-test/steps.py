"""`make compose-test`, the part after setup: the user's steps against the real stack.

Runs with the gateway's venv python (clipsearch.client) from the repository root; run.sh has already
started a private dockerd (DOCKER_HOST) and built the base and stand-in images. Each step
is timed and counted; the last line is ``N passed, N failed``. Everything it creates (its
compose project's containers, networks and volumes) is removed at the end.
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clipsearch.client import Client, GatewayError, Hit, Target

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("CT_PROJECT", "clipsearch-compose-test")
FILES = [
    "docker-compose.yml",
    "docker-compose.cpu.yml",
    "deploy/compose-test/docker-compose.standins.yml",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT = int(os.environ.get("CT_PORT") or free_port())
BASE = f"http://127.0.0.1:{PORT}"
ENV = os.environ | {
    "GATEWAY_PUBLISH_PORT": str(PORT),
    "GATEWAY_PUBLISH_ADDR": "127.0.0.1",
    # No model can be downloaded here: the bundled tiny model, through the bind mount.
    "CLIP_MODEL_NAME": "ViT-B-32::openai",
    "CLIP_MODEL_PATH": "/models/shapes",
}
results: list[tuple[str, bool, float, str]] = []


def compose(*args: str, check: bool = True, timeout: float = 900) -> str:
    cmd = ["docker", "compose", "-p", PROJECT, "--project-directory", str(ROOT)]
    for f in FILES:
        cmd += ["-f", str(ROOT / f)]
    done = subprocess.run(
        [*cmd, *args], env=ENV, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker compose {' '.join(args)}: {done.stderr[-3000:]}")
    return done.stdout + done.stderr


def step(name: str) -> Callable[[Callable[[], str | None]], Callable[[], bool]]:
    def wrap(fn: Callable[[], str | None]) -> Callable[[], bool]:
        def run() -> bool:
            print(f"--- {name}", flush=True)
            start = time.monotonic()
            try:
                note = fn() or ""
                ok = True
            except Exception as exc:  # a failed step is reported, the run goes on
                note, ok = f"{type(exc).__name__}: {exc}", False
            took = time.monotonic() - start
            results.append((name, ok, took, note))
            print(f"{'PASS' if ok else 'FAIL'} {name} ({took:.1f} s) {note}", flush=True)
            return ok

        return run

    return wrap


def make_pictures(n: int, seed: int) -> Path:
    out = Path(tempfile.mkdtemp(prefix=f"ct-pictures-{seed}-"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "clipsearch.demo.shapes",
            "--out",
            str(out),
            "--n",
            str(n),
            "--seed",
            str(seed),
        ],
        check=True,
        capture_output=True,
    )
    return out


def gateway(key: str | None = None) -> Client:
    return Client(BASE, timeout=120, api_key=state.get("key") if key is None else key)


def status_of(call: Callable[[], object]) -> int:
    """200 when ``call`` succeeds, else the gateway's refusal status."""
    try:
        call()
    except GatewayError as exc:
        return exc.status
    return 200


def first_start_key() -> str:
    """The admin key the gateway's entrypoint made and printed on its first start."""
    logs = compose("logs", "--no-color", "--no-log-prefix", "gateway")
    found = re.findall(r"admin API key: (\S+)", logs)
    assert len(found) == 1, f"expected one key printed, found {len(found)}"
    return str(found[0])


def ingest(folder: Path) -> str:
    """POST /v1/ingest with the pictures as uploads and their captions file; the job id."""
    files = sorted((folder / "images").glob("*.png"))
    captions = ("captions.csv", (folder / "captions.csv").read_bytes())
    with gateway() as gw:
        return str(gw.ingest(files, captions_file=captions)["job_id"])


def wait_job(job_id: str, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    with gateway() as gw:
        while time.monotonic() < deadline:
            try:
                job = dict(gw.job(job_id, limit=100))
            except GatewayError:
                time.sleep(1)  # the gateway may be reconnecting
                continue
            if job["status"] not in ("queued", "running"):
                return job
            time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished after {timeout_s:.0f} s")


def summary(job: dict[str, Any]) -> str:
    """Status, counts and the failed items' reasons (not the whole item list)."""
    failed = [f"{i['source']}: {i['error']}" for i in job.get("items", []) if i["error"]][:3]
    return f"{job['status']} (error: {job.get('error')}) {job['counts']} {failed}"


def counts() -> dict[str, int]:
    with gateway() as gw:
        return dict(gw.stats()["collections"]["default"]["counts"])


def search_text(query: str, target: Target = "images") -> list[Hit]:
    with gateway() as gw:
        return list(gw.search_text(query, target=target, top_k=5)["hits"])


state: dict[str, Any] = {}


@step("docker compose config lists an encoder without a profile")
def check_config() -> str:
    plain = subprocess.run(
        ["docker", "compose", "-f", "docker-compose.yml", "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    services = plain.stdout.split()
    assert "clip-server" in services, services
    return " ".join(sorted(services))


@step("build the project's images (gateway, clip-server)")
def build() -> str:
    compose("build", timeout=1800)
    return ""


@step("up --wait: etcd, MinIO, Milvus, clip-server, gateway healthy")
def up() -> str:
    compose("up", "-d", "--wait", timeout=900)
    ps = compose("ps", "--format", "json")
    rows = [json.loads(line) for line in ps.splitlines() if line.startswith("{")]
    health = {r["Service"]: r.get("Health", "") for r in rows}
    assert len(health) == 5, health
    assert set(health.values()) == {"healthy"}, health
    with gateway(key="") as gw:
        ready = gw.request("GET", "/readyz")
    assert ready.status_code == 200, ready.text
    return ", ".join(f"{k}={v}" for k, v in sorted(health.items()))


@step("secure by default: an admin key made on first start, nothing open without it")
def keys() -> str:
    state["key"] = first_start_key()
    with gateway(key="") as anonymous:
        write = status_of(lambda: anonymous.add_texts(["a red circle"]))
        read = status_of(anonymous.stats)
    assert (write, read) == (401, 401), (write, read)
    with gateway() as gw:
        gw.stats()
    return "anonymous write and read: 401; the printed key: 200"


@step("POST /v1/ingest of 50 pictures with captions; the job finishes")
def first_ingest() -> str:
    pics = make_pictures(50, seed=3)
    state["first"] = pics
    job = wait_job(ingest(pics))
    assert job["status"] == "done", summary(job)
    assert job["counts"]["stored"] == 50, summary(job)
    return f"{job['counts']}"


@step("search text->image and image->text: the right top hits")
def searches() -> str:
    with (state["first"] / "captions.csv").open() as f:
        rows = list(csv.DictReader(f))
    text_hits = image_hits = 0
    for row in rows[:10]:
        hits = search_text(row["caption"])
        if row["caption"] in [h["caption"] for h in hits]:
            text_hits += 1
        with gateway() as gw:
            found = gw.search_image(state["first"] / row["image_path"], target="texts", top_k=5)
        if row["caption"] in [h.get("text") for h in found["hits"]]:
            image_hits += 1
    # The tiny model finds a caption's own picture in its top 5 about 9 times in 10.
    assert text_hits >= 6, (text_hits, image_hits)
    assert image_hits >= 6, (text_hits, image_hits)
    return f"own caption/picture in top 5: text->image {text_hits}/10, image->text {image_hits}/10"


@step("/v1/stats counts 50 images and 50 texts")
def stats_counts() -> str:
    c = counts()
    assert c == {"images": 50, "texts": 50}, c
    with gateway() as gw:
        stats = gw.stats()
    assert stats["encoder"]["mode"] == "service", stats["encoder"]
    assert stats["store"]["kind"] != "lite", stats["store"]
    return f"{c}, encoder {stats['encoder']['model_name']} dim {stats['encoder']['dim']}"


@step("restart Milvus during a second ingest job: it finishes, nothing lost")
def restart_milvus() -> str:
    pics = make_pictures(50, seed=4)
    job_id = ingest(pics)
    time.sleep(0.5)
    compose("restart", "milvus", timeout=300)
    job = wait_job(job_id)
    assert job["status"] == "done", summary(job)
    assert job["counts"]["failed"] == 0, summary(job)
    # Milvus reloads its collections after the restart: until then reads answer 503.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if counts()["images"] == 100:
                break
        except GatewayError as exc:
            if exc.status != 503:  # refused fast while the store is away, never a 500
                raise
        time.sleep(1)
    c = counts()
    assert c == {"images": 100, "texts": 100}, c
    return f"job {job['counts']}, stored {c}"


@step("down, then up again: the data is still there")
def down_up() -> str:
    compose("down", timeout=300)
    compose("up", "-d", "--wait", timeout=900)
    logs = compose("logs", "--no-color", "--no-log-prefix", "gateway")
    assert "admin API key" not in logs, "a second key was made on the second start"
    c = counts()
    assert c == {"images": 100, "texts": 100}, c
    hits = search_text("a small green square in the centre")
    assert hits, "no hits after the restart"
    return f"{c}"


@step("down -v removes the containers and volumes")
def down_v() -> str:
    compose("down", "-v", "--remove-orphans", timeout=300)
    left = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not left, left
    return ""


def main() -> int:
    check_config()
    if build() and up() and keys():
        for fn in (first_ingest, searches, stats_counts, restart_milvus, down_up):
            fn()
    down_v()
    print("\nstep                                                           result   seconds")
    for name, ok, took, _ in results:
        print(f"{name[:62]:<62} {'pass' if ok else 'FAIL':<8} {took:7.1f}")
    passed = sum(ok for _, ok, _, _ in results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
