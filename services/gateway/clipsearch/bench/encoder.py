"""``clipsearch bench encoder``: throughput and latency of the local encoder, fp32 vs int8.

Measures, for the fp32 model folder and an int8 copy made with ONNX Runtime's dynamic
quantisation in a temporary folder: images/s (preprocessed pixels through the image
tower, in batches), texts/s (short captions, padding trimmed when the graph allows) and
single-query text latency at the full 77 tokens vs trimmed. Prints a table and one JSON
line. It measures only: it never fails because something is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

QUERY = "a small red circle on the left of a blue square"
_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "black", "white")
_SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
_PLACES = ("on the left", "on the right", "at the top", "at the bottom", "in the centre")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-path", type=Path, default=None, help="model folder")
    parser.add_argument("--images", type=int, default=64, help="images per measurement")
    parser.add_argument("--texts", type=int, default=256, help="texts per measurement")
    parser.add_argument("--repeats", type=int, default=20, help="single-query repeats")
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput rounds (the best one is reported)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: settings")
    parser.add_argument("--threads", type=int, default=None, help="ORT threads (0 = cores)")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 model")


def captions(n: int) -> list[str]:
    """Short, varied captions like the ones users type (about 8-12 tokens each)."""
    rng = np.random.default_rng(0)
    return [
        f"a {rng.choice(_COLOURS)} {rng.choice(_SHAPES)} {rng.choice(_PLACES)}" for _ in range(n)
    ]


def _rate(n: int, rounds: int, fn: Callable[[], object]) -> float:
    """Items/s of the fastest round: on a shared machine the slower rounds measure the
    neighbours, not the model."""
    best = float("inf")
    for _ in range(max(rounds, 1)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / max(best, 1e-9)


def _median_ms(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def measure(folder: Path, args: argparse.Namespace, model_name: str) -> dict[str, Any]:
    """All figures for one model folder; also returns its vectors for the fp32/int8 check."""
    from clipsearch.encoder.local import LocalEncoder
    from clipsearch.encoder.model_files import ModelFiles

    enc = LocalEncoder(
        ModelFiles(folder),
        model_name=model_name,
        batch_size=args.batch_size,
        threads=args.threads,
    )
    textual = enc.load().textual
    size = enc.image_size
    rng = np.random.default_rng(1)
    pixels = rng.standard_normal((max(args.images, 1), 3, size, size)).astype(np.float32)
    texts = captions(max(args.texts, 1))

    enc.encode_pixels(pixels[: min(len(pixels), enc.batch_size)])  # warm-up
    enc.encode_texts_sync(texts[: enc.batch_size])
    images_per_s = _rate(len(pixels), args.rounds, lambda: enc.encode_pixels(pixels))
    texts_per_s = _rate(len(texts), args.rounds, lambda: enc.encode_texts_sync(texts))

    ids, mask = enc.tokenize([QUERY])
    full = {"input_ids": ids, "attention_mask": mask}  # 77 tokens (or the fixed length)
    trimmed_tokens = int(mask.sum()) if textual.dynamic else ids.shape[1]
    textual.session.run(full)
    latency_full = _median_ms(args.repeats, lambda: textual.session.run(full))
    enc.encode_token_batch(ids, mask)
    latency_trimmed = _median_ms(args.repeats, lambda: enc.encode_token_batch(ids, mask))
    return {
        "images_per_s": round(images_per_s, 2),
        "texts_per_s": round(texts_per_s, 2),
        "latency_ms_full": round(latency_full, 3),
        "latency_ms_trimmed": round(latency_trimmed, 3),
        "full_tokens": int(ids.shape[1]),
        "trimmed_tokens": trimmed_tokens,
        "size_mb": round(
            sum((folder / f).stat().st_size for f in ("textual.onnx", "visual.onnx")) / 1e6, 2
        ),
        "_vectors": (enc.encode_pixels(pixels[:16]), enc.encode_texts_sync(texts[:64])),
        "_meta": {
            "model": enc.model_name,
            "dim": enc.dim,
            "image_size": size,
            "dynamic_text": textual.dynamic,
        },
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.mean(np.sum(a * b, axis=1))), 5)


def format_table(result: dict[str, Any]) -> str:
    rows = [("fp32", result["fp32"])]
    if isinstance(result.get("int8"), dict):
        rows.append(("int8", result["int8"]))
    head = (
        f"encoder bench: {result['model']} dim={result['dim']} image_size={result['image_size']}"
        f" text={'dynamic' if result['dynamic_text'] else 'fixed'} nproc={result['nproc']}"
        f" threads={result['threads']} batch={result['batch_size']}"
    )
    full, trim = rows[0][1]["full_tokens"], rows[0][1]["trimmed_tokens"]
    cols = f"{'model':<6}{'images/s':>10}{'texts/s':>10}{f'1q@{full} ms':>12}"
    cols += f"{f'1q@{trim} ms':>12}{'MB':>9}"
    lines = [head, cols]
    for name, r in rows:
        lines.append(
            f"{name:<6}{r['images_per_s']:>10.1f}{r['texts_per_s']:>10.1f}"
            f"{r['latency_ms_full']:>12.2f}{r['latency_ms_trimmed']:>12.2f}{r['size_mb']:>9.1f}"
        )
    if "int8_vs_fp32_cosine" in result:
        c = result["int8_vs_fp32_cosine"]
        lines.append(f"int8 vs fp32 mean cosine: image {c['image']}, text {c['text']}")
    if isinstance(result.get("int8"), str):
        lines.append(f"int8: {result['int8']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from clipsearch.core.config import get_settings
    from clipsearch.encoder.model_files import resolve_model_files
    from clipsearch.encoder.protocol import EncoderError

    settings = get_settings()
    args.batch_size = args.batch_size or settings.encoder_batch_size
    args.threads = settings.encoder_threads if args.threads is None else args.threads
    try:
        folder = args.model_path or resolve_model_files(settings).folder
        fp32 = measure(folder, args, settings.model_name)
    except EncoderError as exc:
        print(f"clipsearch bench encoder: {exc}", file=sys.stderr)
        return 1
    meta = fp32.pop("_meta")
    fp32_vecs = fp32.pop("_vectors")
    result: dict[str, Any] = {
        "bench": "encoder",
        **meta,
        "nproc": os.cpu_count(),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "images": args.images,
        "texts": args.texts,
        "rounds": args.rounds,
        "fp32": fp32,
    }
    if not args.no_int8:
        with tempfile.TemporaryDirectory(prefix="clipsearch-int8-") as tmp:
            try:
                from clipsearch.encoder.quantize import quantize_model_dir

                quantize_model_dir(folder, Path(tmp))
                int8 = measure(Path(tmp), args, settings.model_name)
                int8.pop("_meta")
                img8, txt8 = int8.pop("_vectors")
                result["int8"] = int8
                result["int8_vs_fp32_cosine"] = {
                    "image": _cosine(img8, fp32_vecs[0]),
                    "text": _cosine(txt8, fp32_vecs[1]),
                }
            except Exception as exc:  # a bench reports what failed and carries on
                result["int8"] = f"failed: {exc!r}"
    print(format_table(result))
    print(json.dumps(result, sort_keys=True))
    return 0
