"""``clipsearch bench search``: end-to-end text search vs its parts, and batch vs singles.

For each corpus size (random unit vectors stored in a fresh Milvus Lite file, as image
records): p50/p95 of ``POST /v1/search/text`` through a real uvicorn server on loopback,
measured in the same run as the bare parts (one ``encode_texts`` call; one store search
with an already-encoded vector), and one batch request of 64 text queries vs 64 single
requests. It measures only: it never fails because something is slow.

After the fill the group is flushed as an ingest job ends (``MilvusStore.flush``), then
the bench waits for Lite's background index builds to settle; ``--no-flush`` turns the
flush policy off instead, which is how the store behaved before it had one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.bench.encoder import captions
from clipsearch.bench.loopback import serve
from clipsearch.client import Client
from clipsearch.store.protocol import ImageRecord


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="10000,100000", help="stored vectors, comma list")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per measure")
    parser.add_argument("--batch", type=int, default=64, help="queries in the batch request")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--model-path", type=Path, default=None, help="default: settings")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    parser.add_argument(
        "--no-flush", action="store_true", help="flush policy off: search unflushed rows"
    )


def _pct(samples: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(np.asarray(samples), [50, 95])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2)}


def _timed(n: int, fn: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def _fill(store: Any, group: str, n: int, dim: int) -> float:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, n, 5000):
        m = min(5000, n - start)
        vecs = rng.standard_normal((m, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        store.upsert_images(
            group,
            [
                ImageRecord(id=f"{start + i:064x}", vector=vecs[i], source=f"r{start + i}")
                for i in range(m)
            ],
        )
    return time.perf_counter() - started


def _settle(search: Callable[[int], object], max_s: float = 300.0) -> float:
    """Search until the p50 of 10 searches stops falling (Lite builds segment indexes in a
    background thread after a flush); the seconds it took."""
    started = time.perf_counter()
    last = float(np.median(_timed(10, search)))
    while time.perf_counter() - started < max_s:
        time.sleep(1.0)
        now = float(np.median(_timed(10, search)))
        if now > 0.9 * last:
            break
        last = now
    return time.perf_counter() - started


def _measure(size: int, args: argparse.Namespace, base: Any) -> dict[str, Any]:
    from clipsearch.api.app import create_app
    from clipsearch.bootstrap import build_encoder
    from clipsearch.store.milvus import MilvusStore

    with tempfile.TemporaryDirectory(prefix="clipsearch-bench-") as tmp:
        update: dict[str, Any] = {
            "data_dir": Path(tmp),
            "milvus_uri": "",
            "max_batch_queries": args.batch,
        }
        if args.no_flush:
            update |= {"milvus_flush_rows": 0, "milvus_flush_idle_s": 0.0}
        settings = base.model_copy(update=update)
        encoder = build_encoder(settings)
        store = MilvusStore.from_settings(settings)
        group = settings.default_collection
        store.ensure_group(
            group, dim=encoder.dim, model_name=encoder.model_name, fingerprint=encoder.fingerprint
        )
        fill_s = _fill(store, group, size, encoder.dim)
        flush_s = 0.0
        if not args.no_flush:
            started = time.perf_counter()
            store.flush(group)
            flush_s = time.perf_counter() - started
        queries = captions(max(args.queries, args.batch))
        # Warm: loads the collection, the ONNX sessions and the HNSW graph.
        loop = asyncio.new_event_loop()
        vec = loop.run_until_complete(encoder.encode_texts([queries[0]]))
        settle_s = _settle(lambda _: store.search(group, "images", vec, top_k=args.top_k))

        encode = _timed(
            args.queries, lambda i: loop.run_until_complete(encoder.encode_texts([queries[i]]))
        )
        vectors = loop.run_until_complete(encoder.encode_texts(queries[: args.queries]))
        bare_search = _timed(
            args.queries,
            lambda i: store.search(group, "images", vectors[i : i + 1], top_k=args.top_k),
        )

        app = create_app(settings, encoder=encoder, store=store)
        try:
            with serve(app, name="bench-search") as url, Client(url, timeout=120) as client:

                def one(i: int) -> None:
                    client.search_text(queries[i], top_k=args.top_k)

                one(0)
                e2e = _timed(args.queries, one)
                batch_queries = [{"text": q} for q in queries[: args.batch]]
                batch = _timed(5, lambda _: client.search_batch(batch_queries, top_k=args.top_k))

                def singles_run(_: int) -> None:
                    for i in range(args.batch):
                        one(i)

                singles = _timed(5, singles_run)
        finally:
            loop.run_until_complete(encoder.close())
            loop.close()
            store.close()
    return {
        "stored": size,
        "fill_s": round(fill_s, 1),
        "flush_s": round(flush_s, 2),
        "settle_s": round(settle_s, 1),
        "e2e": _pct(e2e),
        "encode": _pct(encode),
        "store_search": _pct(bare_search),
        "parts_sum_p50_ms": round(float(np.median(encode) + np.median(bare_search)), 2),
        f"batch_{args.batch}_ms": round(float(np.median(batch)), 1),
        f"singles_{args.batch}_ms": round(float(np.median(singles)), 1),
    }


def _table(rows: list[dict[str, Any]], args: argparse.Namespace, base: Any) -> str:
    b = args.batch
    flush = (
        "flush policy off"
        if args.no_flush
        else f"flush policy on ({base.milvus_flush_rows} rows / {base.milvus_flush_idle_s} s idle)"
    )
    lines = [
        f"index {base.index_type.value}, top_k {args.top_k}, {args.queries} queries per figure, "
        f"model {base.model_path or base.model_name}, {flush}",
        "",
        "| stored | fill / final flush / settle (s) | e2e p50 / p95 (ms) | encode p50 / p95 "
        f"| store search p50 / p95 | encode+search p50 | batch of {b} | {b} single requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stored']:,} | {r['fill_s']} / {r['flush_s']} / {r['settle_s']} "
            f"| {r['e2e']['p50_ms']} / {r['e2e']['p95_ms']} "
            f"| {r['encode']['p50_ms']} / {r['encode']['p95_ms']} "
            f"| {r['store_search']['p50_ms']} / {r['store_search']['p95_ms']} "
            f"| {r['parts_sum_p50_ms']} | {r[f'batch_{b}_ms']} ms | {r[f'singles_{b}_ms']} ms |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from clipsearch.core.config import get_settings

    base = get_settings()
    if args.model_path is not None:
        base = base.model_copy(update={"model_path": args.model_path})
    rows = []
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        print(f"measuring with {size:,} stored vectors ...", flush=True)
        rows.append(_measure(size, args, base))
    table = _table(rows, args, base)
    print(table)
    print(json.dumps(rows))
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## Search (clipsearch bench search)\n\n{table}\n")
    return 0
