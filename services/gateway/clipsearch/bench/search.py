"""``clipsearch bench search``: the store against in-process engines, and end-to-end search.

For each corpus size, clustered unit vectors (64 gaussian centres, :mod:`.search_store`)
are stored as image records in a fresh Milvus Lite file, or in the server ``--milvus-uri``
names (a group of its own, dropped after). Once written, the group is flushed as an ingest
job ends (``MilvusStore.flush``) and the bench waits until Milvus reports the vector index
built over every row (``describe_index``: ``indexed_rows == total_rows``, see
:mod:`clipsearch.store.milvus_index`) instead of for the latency to stop falling. Lite 3.2.2
reports every row indexed at once, even unflushed ones, so on Lite that wait is no signal.

Then, in the same run: recall@k against the exact answer, p50/p99 of single queries and
queries per second at ``--clients`` concurrent clients for ``MilvusStore.search``, faiss HNSW
with the same M/efConstruction/ef (when faiss is installed: the ``bench`` extra) and numpy
brute force. Without ``--store-only`` also p50/p95 of ``POST /v1/search/text`` through a real
uvicorn server on loopback beside its parts (one ``encode_texts`` call; one store search),
and one batch request of 64 text queries vs 64 single requests.

It measures only: it never fails because something is slow. ``--no-flush`` turns the flush
policy off (how the store behaved before it had one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from clipsearch.bench import search_store as sq
from clipsearch.bench.encoder import captions
from clipsearch.bench.loopback import serve
from clipsearch.bootstrap.wiring import build_store
from clipsearch.client import Client
from clipsearch.store.milvus_consistency import read_options
from clipsearch.store.milvus_index import wait_indexed
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
    parser.add_argument(
        "--milvus-uri",
        default="",
        help="a Milvus server (http://host:port) to measure; default: a fresh Lite file",
    )
    parser.add_argument(
        "--store-only",
        action="store_true",
        help="only the store comparison (no encoder, no gateway), with --dim vectors",
    )
    parser.add_argument("--dim", type=int, default=512, help="vector size with --store-only")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for QPS")
    parser.add_argument("--index-timeout", type=float, default=1800.0, help="seconds")


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


def _fill(store: Any, group: str, corpus: npt.NDArray[np.float32]) -> float:
    """Store ``corpus`` as image records (id = the row number in hex); the seconds it took."""
    started = time.perf_counter()
    for start in range(0, len(corpus), 5000):
        part = corpus[start : start + 5000]
        store.upsert_images(
            group,
            [
                ImageRecord(id=f"{start + i:064x}", vector=v, source=f"r{start + i}")
                for i, v in enumerate(part)
            ],
        )
    return time.perf_counter() - started


def _compare(
    store: Any, group: str, corpus: npt.NDArray[np.float32], args: argparse.Namespace, base: Any
) -> list[dict[str, Any]]:
    """The store, faiss HNSW and numpy exact on the same corpus and queries (one run)."""
    k = args.top_k
    queries = sq.clustered(args.queries, corpus.shape[1], seed=99)
    exact = sq.exact_top_k(corpus, queries, k)

    def milvus(q: npt.NDArray[np.float32]) -> list[int]:
        return [int(h.id, 16) for h in store.search(group, "images", q, top_k=k)[0]]

    engine = ("store-" if store.kind == "faiss" else "milvus-") + store.kind
    results = [sq.measure(engine, milvus, queries, exact, args.clients)]
    if store.kind == "standalone":  # a second client to a Lite file is not the same engine
        name = store.collection(group, "images")
        bare, close = sq.bare_milvus_engine(
            args.milvus_uri,
            name,
            k,
            base.hnsw_ef_search,
            read_options(base.milvus_consistency.value),
        )
        try:
            results.append(sq.measure("milvus-bare", bare, queries, exact, args.clients))
        finally:
            close()
    made = sq.faiss_engine(corpus, k, base.hnsw_m, base.hnsw_ef_construction, base.hnsw_ef_search)
    if made is not None:
        fn, build_s = made
        res = sq.measure("faiss-hnsw", fn, queries, exact, args.clients)
        res.build_s = build_s
        results.append(res)
    results.append(
        sq.measure("numpy-exact", sq.numpy_engine(corpus, k), queries, exact, args.clients)
    )
    return [r.row() for r in results]


BENCH_PREFIX = "clipsearchbench"


def _settle(store: Any, group: str, rows: int, timeout_s: float) -> float:
    """Seconds until the store's index covers every row: Milvus' ``describe_index``, or the
    faiss store's graph (built in the background after the flush)."""
    if store.kind != "faiss":
        return wait_indexed(store, group, "images", rows=rows, timeout_s=timeout_s)
    started = time.monotonic()
    while not store.indexed(group, "images"):
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"faiss graph of {group}/images not built in {timeout_s} s")
        time.sleep(0.2)
    return time.monotonic() - started


def _measure(size: int, args: argparse.Namespace, base: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="clipsearch-bench-") as tmp:
        update: dict[str, Any] = {
            "data_dir": Path(tmp),
            "milvus_uri": args.milvus_uri,
            "collection_prefix": BENCH_PREFIX,
            "max_batch_queries": args.batch,
        }
        if args.no_flush:
            update |= {"milvus_flush_rows": 0, "milvus_flush_idle_s": 0.0}
        settings = base.model_copy(update=update)
        encoder = None
        if not args.store_only:
            from clipsearch.bootstrap import build_encoder

            encoder = build_encoder(settings)
        dim = args.dim if encoder is None else encoder.dim
        store = build_store(settings)
        group = settings.default_collection
        try:
            if group in store.list_groups():  # left by an interrupted run on a server
                store.drop_group(group)
            store.ensure_group(
                group,
                dim=dim,
                model_name=encoder.model_name if encoder else "bench",
                fingerprint=encoder.fingerprint if encoder else f"bench-{dim}",
            )
            corpus = sq.clustered(size, dim, seed=0)
            row: dict[str, Any] = {"stored": size, "dim": dim, "backend": store.kind}
            row["fill_s"] = round(_fill(store, group, corpus), 1)
            row["flush_s"] = row["index_s"] = 0.0
            if not args.no_flush:
                started = time.perf_counter()
                store.flush(group)
                row["flush_s"] = round(time.perf_counter() - started, 2)
                # Settled = the index covers every row (not: the latency stopped falling).
                row["index_s"] = round(_settle(store, group, size, args.index_timeout), 1)
            row["engines"] = _compare(store, group, corpus, args, settings)
            if encoder is not None:
                row |= _through_gateway(store, group, encoder, settings, args)
        finally:
            if encoder is not None:
                asyncio.run(encoder.close())
            with contextlib.suppress(Exception):
                if store.kind == "standalone":
                    store.drop_group(group)
            store.close()
    return row


def _through_gateway(
    store: Any, group: str, encoder: Any, settings: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """End-to-end text search through a real gateway vs its parts; batch vs singles."""
    from clipsearch.api.app import create_app

    queries = captions(max(args.queries, args.batch))
    loop = asyncio.new_event_loop()
    try:
        encode = _timed(
            args.queries, lambda i: loop.run_until_complete(encoder.encode_texts([queries[i]]))
        )
        vectors = loop.run_until_complete(encoder.encode_texts(queries[: args.queries]))
        bare_search = _timed(
            args.queries,
            lambda i: store.search(group, "images", vectors[i : i + 1], top_k=args.top_k),
        )
    finally:
        loop.close()
    app = create_app(settings, encoder=encoder, store=store)
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
    return {
        "e2e": _pct(e2e),
        "encode": _pct(encode),
        "store_search": _pct(bare_search),
        "parts_sum_p50_ms": round(float(np.median(encode) + np.median(bare_search)), 2),
        f"batch_{args.batch}_ms": round(float(np.median(batch)), 1),
        f"singles_{args.batch}_ms": round(float(np.median(singles)), 1),
    }


def _table(rows: list[dict[str, Any]], args: argparse.Namespace, base: Any) -> str:
    flush = (
        "flush policy off"
        if args.no_flush
        else f"flush policy on ({base.milvus_flush_rows} rows / {base.milvus_flush_idle_s} s idle)"
    )
    lines = [
        f"index {base.index_type.value} (M {base.hnsw_m}, efConstruction "
        f"{base.hnsw_ef_construction}, ef {base.hnsw_ef_search}), top_k {args.top_k}, "
        f"{args.queries} queries per figure, {args.clients} clients for QPS, "
        f"consistency {base.milvus_consistency.value}, {flush}; "
        f"vectors: {sq.CENTRES} gaussian clusters, unit length",
        "",
        f"| stored x dim | backend | fill / flush / index built (s) | engine | recall@{args.top_k} "
        f"| p50 / p99 (ms) | QPS at {args.clients} clients |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        times = f"{r['fill_s']} / {r['flush_s']} / {r['index_s']}"
        for e in r["engines"]:
            build = f" (build {e['build_s']} s)" if e["build_s"] else ""
            lines.append(
                f"| {r['stored']:,} x {r['dim']} | {r['backend']} | {times} | {e['engine']}{build} "
                f"| {e['recall']} | {e['p50_ms']} / {e['p99_ms']} | {e['qps']} |"
            )
    b = args.batch
    if any("e2e" in r for r in rows):
        lines += [
            "",
            f"| stored | e2e p50 / p95 (ms) | encode p50 / p95 | store search p50 / p95 "
            f"| encode+search p50 | batch of {b} | {b} single requests |",
            "|---|---|---|---|---|---|---|",
        ]
    for r in rows:
        if "e2e" not in r:
            continue
        lines.append(
            f"| {r['stored']:,} | {r['e2e']['p50_ms']} / {r['e2e']['p95_ms']} "
            f"| {r['encode']['p50_ms']} / {r['encode']['p95_ms']} "
            f"| {r['store_search']['p50_ms']} / {r['store_search']['p95_ms']} "
            f"| {r['parts_sum_p50_ms']} | {r[f'batch_{b}_ms']} ms | {r[f'singles_{b}_ms']} ms |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from clipsearch.core.config import get_settings

    base = get_settings()
    if args.store_only and args.dim < 1:
        raise SystemExit("--dim must be positive")
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
