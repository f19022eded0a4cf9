"""``clipsearch bench load``: mixed traffic at a fixed concurrency, then 5x it, then back.

A gateway runs in a child process on loopback (a fresh data dir; ``--url`` measures one
already running instead), seeded with ``--seed`` generated pictures. Then three phases of
``--seconds`` each: ``--concurrency`` closed-loop clients (each sends its next request as
soon as the last one is answered; a refused one waits its ``Retry-After``, at most 1 s),
``--factor`` times as many, and back to the first count. Each request is drawn at
random: 70 % text search, 20 % image search (an uploaded picture, decoded by the
gateway), 10 % ingest (a one-picture job, never seen before).
Clients are threads of this process, each with its own :class:`clipsearch.client.Client`.

Per phase and endpoint: requests, throughput, p50/p95/p99 of the *admitted* requests, the
share refused fast (503 ``overloaded`` or 429) with its p99, and the error rate (any other
failure). ``--no-cap`` runs the gateway without the in-flight caps, for the comparison in
RELIABILITY.md. It measures only: it never fails because something is slow.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from clipsearch.bench.encoder import captions
from clipsearch.bench.loopback import GatewayProcess
from clipsearch.client import Client, GatewayError

MIX = (("search_text", 0.7), ("search_image", 0.2), ("ingest", 0.1))
REFUSED = {"overloaded", "too_many_requests", "spool_full"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="a running gateway (default: start one)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in phases 1 and 3")
    parser.add_argument("--factor", type=int, default=5, help="phase 2 has factor x clients")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    parser.add_argument("--seed", type=int, default=64, help="pictures stored before the run")
    parser.add_argument("--model-path", type=Path, default=None, help="default: settings")
    parser.add_argument("--no-cap", action="store_true", help="gateway without in-flight caps")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON here")


@dataclass(slots=True)
class Sample:
    endpoint: str
    ms: float
    outcome: str  # ok | refused | error


def _png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class _Traffic:
    """What the clients send: queries, pictures to search with, fresh pictures to ingest."""

    def __init__(self, seed_pngs: list[bytes]) -> None:
        self.queries = captions(200)
        self.pictures = seed_pngs
        self._next = 10_000_000
        self._lock = threading.Lock()

    def fresh(self) -> bytes:
        with self._lock:
            self._next += 1
            n = self._next
        return _png(n)

    def one(self, client: Client, endpoint: str, rng: random.Random) -> None:
        if endpoint == "search_text":
            client.search_text(rng.choice(self.queries), top_k=10)
        elif endpoint == "search_image":
            client.search_image(("q.png", rng.choice(self.pictures)), top_k=10)
        else:
            client.ingest([("new.png", self.fresh())])


def _phase(url: str, traffic: _Traffic, clients: int, seconds: float) -> list[Sample]:
    samples: list[Sample] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    names = [n for n, _ in MIX]
    weights = [w for _, w in MIX]

    def worker(k: int) -> None:
        rng = random.Random(k)
        mine: list[Sample] = []
        with Client(url, timeout=120) as client:
            while time.monotonic() < stop_at:
                endpoint = rng.choices(names, weights)[0]
                started = time.perf_counter()
                outcome, wait = "ok", 0.0
                try:
                    traffic.one(client, endpoint, rng)
                except GatewayError as exc:
                    outcome = "refused" if exc.code in REFUSED else "error"
                    wait = exc.retry_after_s or 0.0
                mine.append(Sample(endpoint, (time.perf_counter() - started) * 1000, outcome))
                # A refused client comes back when told to (Retry-After, up to 1 s here so a
                # short phase still sees it retry): what a client of the gateway should do.
                time.sleep(min(wait, 1.0, max(0.0, stop_at - time.monotonic())))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples


def _pcts(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return {"p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1),
            "p99_ms": round(float(p99), 1)}  # fmt: skip


def summarise(samples: list[Sample], clients: int, seconds: float) -> dict[str, Any]:
    """One phase's report: totals and, per endpoint, admitted latencies and refusals."""
    by: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by[s.endpoint].append(s)
    endpoints = {}
    for name, _ in MIX:
        got = by.get(name, [])
        ok = [s.ms for s in got if s.outcome == "ok"]
        refused = [s.ms for s in got if s.outcome == "refused"]
        endpoints[name] = {
            "requests": len(got),
            "ok": len(ok),
            "refused": len(refused),
            "errors": sum(s.outcome == "error" for s in got),
            **_pcts(ok),
            "refused_p99_ms": _pcts(refused)["p99_ms"],
        }
    n = len(samples)
    ok_ms = [s.ms for s in samples if s.outcome == "ok"]
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": n,
        "throughput_rps": round(n / seconds, 1) if seconds else 0.0,
        "admitted_rps": round(len(ok_ms) / seconds, 1) if seconds else 0.0,
        "refused_share": round(sum(s.outcome == "refused" for s in samples) / n, 4) if n else 0.0,
        "error_rate": round(sum(s.outcome == "error" for s in samples) / n, 4) if n else 0.0,
        "admitted": _pcts(ok_ms),
        "endpoints": endpoints,
    }


@contextmanager
def _gateway(args: argparse.Namespace) -> Iterator[str]:
    if args.url:
        yield args.url.rstrip("/")
        return
    from clipsearch.core.config import get_settings

    model = args.model_path or get_settings().model_path
    with tempfile.TemporaryDirectory(prefix="clipsearch-load-") as tmp:
        env = {"CLIPSEARCH_DATA_DIR": str(Path(tmp) / "data"), "CLIPSEARCH_INDEX_TYPE": "FLAT"}
        if model is not None:
            env["CLIPSEARCH_MODEL_PATH"] = str(model)
        if args.no_cap:
            env |= {f"CLIPSEARCH_MAX_INFLIGHT_{c}": "0" for c in ("SEARCH", "WRITE", "INGEST")}
        with (Path(tmp) / "gateway.log").open("ab") as log:
            gw = GatewayProcess(env, log)
            try:
                gw.start()
                yield gw.url
            finally:
                gw.stop()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Seed, run the three phases, report (the JSON the command prints)."""
    with _gateway(args) as url:
        seed = [_png(i) for i in range(args.seed)]
        with Client(url, timeout=120) as client:
            for start in range(0, len(seed), 32):
                client.add_images(
                    [(f"s{i}.png", d) for i, d in enumerate(seed[start : start + 32])]
                )
        traffic = _Traffic(seed)
        phases = []
        for name, clients in (
            ("base", args.concurrency),
            ("overload", args.concurrency * args.factor),
            ("back", args.concurrency),
        ):
            samples = _phase(url, traffic, clients, args.seconds)
            phases.append({"phase": name, **summarise(samples, clients, args.seconds)})
    return {"mix": dict(MIX), "capped": not args.no_cap, "phases": phases}


def table(report: dict[str, Any]) -> str:
    cap = "in-flight caps on" if report["capped"] else "in-flight caps off (--no-cap)"
    lines = [
        f"mix {report['mix']}, {cap}",
        "",
        "| phase | clients | req/s | admitted req/s | refused | errors | admitted p50 / p95 / "
        "p99 (ms) | text p99 | image p99 | ingest p99 | refused p99 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["phases"]:
        e = p["endpoints"]
        refused_p99 = max((v["refused_p99_ms"] or 0.0) for v in e.values())
        a = p["admitted"]
        lines.append(
            f"| {p['phase']} | {p['clients']} | {p['throughput_rps']} | {p['admitted_rps']} "
            f"| {p['refused_share']:.1%} | {p['error_rate']:.1%} "
            f"| {a['p50_ms']} / {a['p95_ms']} / {a['p99_ms']} "
            f"| {e['search_text']['p99_ms']} | {e['search_image']['p99_ms']} "
            f"| {e['ingest']['p99_ms']} | {refused_p99 or '-'} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = measure(args)
    text = table(report)
    print(text)
    print(json.dumps(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## Load (clipsearch bench load)\n\n{text}\n")
    return 0
