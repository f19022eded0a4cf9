"""``clipsearch bench ingest``: the ingest job pipeline against its ceiling and a naive loop.

On ``--n`` generated shape pictures (PNG, :mod:`clipsearch.demo.shapes`), in one run:

* **ceiling** - the bare image encoder on the same preprocessed batches (decoding and
  preprocessing done beforehand, untimed): no pipeline can beat it.
* **pipeline** - the product end to end: one multipart ``POST /v1/ingest`` to a real
  gateway (uvicorn on loopback, in this process), timed until the job is ``done``; then
  checked (untimed) to be searchable: every picture counted, one found by its own vector.
* **naive** - what a first script does: for each picture decode + preprocess, encode it
  alone, write its blob (original + thumbnail, as the pipeline does) and insert its one
  vector record.

Prints images/s of each and the ratios pipeline/ceiling and pipeline/naive, as a table and
one JSON line. It measures only: it never fails because something is slow.

``--runtimes fp32,int8`` repeats ceiling and pipeline per encoder runtime in the same run
(``int8`` needs the ``clipsearch quantize`` copy beside the model) and prints each runtime's
pipeline rate over the first one's. ``--large N`` adds N 4000x3000 JPEGs
(:mod:`clipsearch.bench.large_photos`): decode + preprocess with and without draft mode, and
one ``POST /v1/images`` each, on the first runtime's gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from clipsearch.bench.loopback import serve
from clipsearch.client import JOB_RUNNING, Client
from clipsearch.store.protocol import ImageRecord

ROOT = Path(__file__).resolve().parents[4]
TINY = ROOT / "services" / "encoder" / "models" / "shapes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=2000, help="pictures to ingest")
    parser.add_argument(
        "--naive-n", type=int, default=None, help="pictures for the naive loop (default: n)"
    )
    parser.add_argument("--seed", type=int, default=11, help="picture generator seed")
    parser.add_argument(
        "--model-path", type=Path, default=None, help="default: the shapes model, else settings"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: settings")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    parser.add_argument(
        "--runtimes", default=None, help="comma list of encoder runtimes (default: settings)"
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive loop")
    parser.add_argument("--large", type=int, default=0, help="4000x3000 JPEGs to measure (0: none)")
    parser.add_argument("--large-repeats", type=int, default=3, help="best of N per large photo")


def pictures(n: int, seed: int) -> list[bytes]:
    """``n`` distinct PNG pictures, deterministic in ``(n, seed)``."""
    from clipsearch.demo.shapes import iter_samples

    out = []
    for image, _ in iter_samples(n, seed):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _preprocess(enc: Any, data: bytes, max_pixels: int) -> np.ndarray:
    from clipsearch.encoder.preprocess import load_and_preprocess

    c = enc.config
    pixels, _ = load_and_preprocess(data, int(c.image_size), max_pixels, c.mean, c.std)
    return pixels


def ceiling(enc: Any, pics: list[bytes], settings: Any) -> tuple[float, float]:
    """Images/s of ``encode_pixels`` alone, on the batches the pipeline would form, and
    the CPU seconds (all threads) it took."""
    size = settings.encoder_batch_size
    batches = [
        np.stack([_preprocess(enc, d, settings.max_pixels) for d in pics[i : i + size]])
        for i in range(0, len(pics), size)
    ]
    enc.encode_pixels(batches[0])  # warm-up: session arenas sized for a full batch
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        enc.encode_pixels(batch)
    return len(pics) / max(time.perf_counter() - started, 1e-9), time.process_time() - cpu


def pipeline(
    enc: Any,
    pics: list[bytes],
    base: Any,
    tmp: Path,
    large: list[bytes] | None = None,
    large_repeats: int = 3,
) -> dict[str, Any]:
    """Upload all pictures in one job and time it until ``done``; then check searchable.
    With ``large`` photos, then measure them on the same gateway (``result["large"]``)."""
    from clipsearch.api.app import create_app
    from clipsearch.bootstrap import build_blobs, build_store

    settings = base.model_copy(update={"data_dir": tmp, "milvus_uri": ""})
    tmp.mkdir(parents=True, exist_ok=True)
    store = build_store(settings)
    try:
        app = create_app(settings, encoder=enc, store=store, blobs=build_blobs(settings))
        with serve(app, name="bench-gateway") as url, Client(url, timeout=600) as client:
            files = [(f"{i:06d}.png", d) for i, d in enumerate(pics)]
            started, cpu = time.perf_counter(), time.process_time()
            job_id = client.ingest(files)["job_id"]
            upload_s = time.perf_counter() - started
            while True:  # light polling: status reads cost the gateway too
                body = client.job(job_id)
                if body["status"] not in JOB_RUNNING:
                    break
                time.sleep(0.1)
            seconds = time.perf_counter() - started
            # CPU of this whole process (gateway, job, and the client's upload): less at
            # the mercy of the neighbours than wall time on a shared machine.
            cpu_s = time.process_time() - cpu
            metrics = client.metrics()
            large_result = None
            if large:
                from clipsearch.bench import large_photos

                large_result = large_photos.measure(enc, client, large, settings, large_repeats)
        group = settings.default_collection
        first = enc.encode_pixels(_preprocess(enc, pics[0], settings.max_pixels)[None])
        hit = store.search(group, "images", first, top_k=1)[0]
        searchable = (
            # Each repeat of a large photo posts new bytes (see large_photos.post_ms).
            store.count(group, "images") == len(pics) + len(large or []) * max(large_repeats, 1)
            and bool(hit)
            and hit[0].id == hashlib.sha256(pics[0]).hexdigest()
        )
    finally:
        store.close()
    return {
        "images_per_s": len(pics) / max(seconds, 1e-9),
        "seconds": seconds,
        "upload_s": upload_s,
        "cpu_ms_per_image": 1000 * cpu_s / len(pics),
        "status": body["status"],
        "counts": body["counts"],
        "searchable": searchable,
        "encode_s": _metric(metrics, "clipsearch_encoder_duration_seconds_sum", 'kind="image"'),
        "upsert_s": _metric(metrics, "clipsearch_store_call_duration_seconds_sum", "upsert_images"),
        "large": large_result,
    }


def naive(enc: Any, pics: list[bytes], base: Any, tmp: Path) -> float:
    """Images/s of one-at-a-time decode, encode, blob write and insert."""
    from clipsearch.bootstrap import build_blobs, build_store

    settings = base.model_copy(update={"data_dir": tmp, "milvus_uri": ""})
    tmp.mkdir(parents=True, exist_ok=True)
    store = build_store(settings)
    blobs = build_blobs(settings)
    group = settings.default_collection
    store.ensure_group(group, dim=enc.dim, model_name=enc.model_name, fingerprint=enc.fingerprint)
    try:
        started = time.perf_counter()
        for i, data in enumerate(pics):
            vector = enc.encode_pixels(_preprocess(enc, data, settings.max_pixels)[None])[0]
            blob_id = hashlib.sha256(data).hexdigest()
            blobs.put(blob_id, data, "image/png")
            store.upsert_images(group, [ImageRecord(id=blob_id, vector=vector, source=f"{i}.png")])
        seconds = time.perf_counter() - started
    finally:
        store.close()
    return len(pics) / max(seconds, 1e-9)


def _metric(text: str, name: str, label: str) -> float:
    """Sum of the samples of ``name`` whose labels contain ``label``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            total += float(line.rsplit(" ", 1)[-1])
    return round(total, 3)


def format_table(r: dict[str, Any]) -> str:
    p = r["pipeline"]
    naive_row = (
        f"| naive: one at a time (n={r['naive_n']}) | {r['naive_images_per_s']:.1f} |"
        if r.get("naive_images_per_s")
        else "| naive: skipped (--no-naive) | - |"
    )
    lines = [
        f"ingest bench: n={r['n']} model={r['model']} image_size={r['image_size']} "
        f"batch={r['batch_size']} nproc={r['nproc']} runtime={r['runtime']}",
        "",
        "| path | images/s |",
        "|---|---|",
        f"| ceiling: bare encoder on preprocessed batches | {r['ceiling_images_per_s']:.1f} |",
        f"| pipeline: POST /v1/ingest -> job done | {r['pipeline_images_per_s']:.1f} |",
        naive_row,
        "",
        f"pipeline / ceiling = {r['pipeline_vs_ceiling']:.2f}"
        + (
            f", pipeline / naive = {r['pipeline_vs_naive']:.1f}"
            if r.get("pipeline_vs_naive")
            else ""
        )
        + f"; job {p['status']}, searchable {p['searchable']}, {p['seconds']:.1f} s of which "
        f"upload {p['upload_s']:.1f} s; encoder {p['encode_s']:.1f} s, "
        f"upserts {p['upsert_s']:.1f} s",
        f"CPU per picture: pipeline {p['cpu_ms_per_image']:.2f} ms (whole process), "
        f"ceiling {r['ceiling_cpu_ms_per_image']:.2f} ms",
    ]
    return "\n".join(lines)


def format_runtimes(runs: list[dict[str, Any]]) -> str:
    """One row per runtime, and each one's rates over the first runtime's (same run). The
    CPU time per picture (the whole process's) is the steadier figure on a shared machine:
    neighbours stretch wall time, much less the CPU a picture costs."""
    first = runs[0]
    lines = [
        "",
        "| runtime | ceiling images/s | pipeline images/s | pipeline / ceiling "
        f"| pipeline x {first['runtime']} | pipeline CPU ms/picture "
        f"| CPU: {first['runtime']} / this |",
        "|---|---|---|---|---|---|---|",
    ]
    first_cpu = first["pipeline"]["cpu_ms_per_image"]
    for r in runs:
        cpu = r["pipeline"]["cpu_ms_per_image"]
        lines.append(
            f"| {r['runtime']} | {r['ceiling_images_per_s']:.1f} | "
            f"{r['pipeline_images_per_s']:.1f} | {r['pipeline_vs_ceiling']:.2f} | "
            f"{r['pipeline_images_per_s'] / first['pipeline_images_per_s']:.2f} | "
            f"{cpu:.1f} | {first_cpu / max(cpu, 1e-9):.2f} |"
        )
    return "\n".join(lines)


def _one_runtime(
    base: Any, runtime: str, pics: list[bytes], args: argparse.Namespace, large: list[bytes]
) -> dict[str, Any]:
    from clipsearch.core.config import EncoderRuntime
    from clipsearch.encoder.local import LocalEncoder

    settings = base.model_copy(update={"encoder_runtime": EncoderRuntime(runtime)})
    enc = LocalEncoder.from_settings(settings)
    naive_pics = [] if args.no_naive else pics[: max(1, min(len(pics), args.naive_n or len(pics)))]
    slow = 0.0
    try:
        print(f"[{runtime}] ceiling ...", flush=True)
        top, top_cpu = ceiling(enc, pics, settings)
        with tempfile.TemporaryDirectory(prefix="clipsearch-bench-ingest-") as tmp:
            print(f"[{runtime}] pipeline ...", flush=True)
            job = pipeline(enc, pics, settings, Path(tmp) / "pipeline", large, args.large_repeats)
            if naive_pics:
                print(f"[{runtime}] naive ...", flush=True)
                slow = naive(enc, naive_pics, settings, Path(tmp) / "naive")
    finally:
        asyncio.run(enc.close())
    rate = job.pop("images_per_s")
    n = len(pics)
    return {
        "runtime": runtime,
        "precision": enc.precision,
        "fingerprint": enc.fingerprint,
        "n": n,
        "naive_n": len(naive_pics),
        "image_size": enc.image_size,
        "ceiling_images_per_s": round(top, 2),
        "pipeline_images_per_s": round(rate, 2),
        "naive_images_per_s": round(slow, 2) if slow else None,
        "pipeline_vs_ceiling": round(rate / top, 3),
        "pipeline_vs_naive": round(rate / slow, 2) if slow else None,
        "ceiling_cpu_ms_per_image": round(1000 * top_cpu / n, 3),
        "pipeline": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in job.items()},
    }


def run(args: argparse.Namespace) -> int:
    from clipsearch.bench import large_photos
    from clipsearch.core.config import EncoderMode, EncoderRuntime, get_settings
    from clipsearch.encoder.protocol import EncoderError

    base = get_settings()
    model_path = args.model_path or (TINY if (TINY / "visual.onnx").is_file() else None)
    update: dict[str, Any] = {"encoder_mode": EncoderMode.local}
    if model_path is not None:
        update["model_path"] = model_path
    if args.batch_size:
        update["encoder_batch_size"] = args.batch_size
    if args.large:  # camera JPEGs are larger than the default upload limit allows for some
        update["max_upload_bytes"] = max(base.max_upload_bytes, 64 * 1024 * 1024)
    base = base.model_copy(update=update)
    names = args.runtimes.split(",") if args.runtimes else [base.encoder_runtime.value]
    try:
        runtimes = [EncoderRuntime(n.strip()).value for n in names if n.strip()]
    except ValueError as exc:
        print(f"clipsearch bench ingest: {exc}", file=sys.stderr)
        return 2
    n = max(1, args.n)
    print(f"generating {n} pictures ...", flush=True)
    pics = pictures(n, args.seed)
    large = large_photos.photos(args.large, args.seed) if args.large > 0 else []
    runs = []
    try:
        for i, runtime in enumerate(runtimes):
            runs.append(_one_runtime(base, runtime, pics, args, large if i == 0 else []))
    except EncoderError as exc:
        print(f"clipsearch bench ingest: {exc}", file=sys.stderr)
        return 1
    result = dict(runs[0])
    result.update(
        bench="ingest",
        nproc=os.cpu_count(),
        model=str(model_path or base.model_name),
        batch_size=base.encoder_batch_size,
        runtimes=runs,
    )
    table = format_table(result)
    if len(runs) > 1:
        table += "\n" + format_runtimes(runs)
    large_result = runs[0]["pipeline"].get("large")
    if large_result:
        table += "\n" + "\n".join(large_photos.format_lines(large_result))
    print(table)
    print(json.dumps(result, sort_keys=True))
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as fh:
            fh.write(f"\n## Ingest (clipsearch bench ingest --n {n})\n\n{table}\n")
    return 0
