"""``clipsearch bench encoder``: every encoder runtime available here, side by side in one run.

Runtimes (``--runtimes``, default all that can run here):

* ``fp32``: ONNX Runtime on the model folder (the reference of every ratio);
* ``int8``: ONNX Runtime on the static int8 copy (``<folder>-int8`` if ``clipsearch quantize``
  made it from this folder, else one made now in a temporary folder, calibrated on
  ``--pictures`` generated pictures or ``--calibrate DIR``);
* ``int8-dynamic``: ONNX Runtime's ``quantize_dynamic`` copy, made now;
* ``openvino``: OpenVINO on the fp32 files (bf16 where the CPU has it), if installed.

Per runtime: images/s through the image tower at batch 8 and 32 (generated shape pictures,
preprocessed beforehand: decoding not included), texts/s (short captions, padding trimmed
when the graph allows), one text query's latency (best of ``--repeats``; trimmed, and at
the full 77 tokens), the files' size, and the cosine of its vectors to fp32's. The rounds
are interleaved (round 1 of every runtime, then round 2...) and the best round is kept, so
a busy neighbour slows every runtime alike. Prints a table with the ratios to fp32 and one
JSON line. It never fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import os
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
ALL_RUNTIMES = ("fp32", "int8", "int8-dynamic", "openvino")
BATCHES = (8, 32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-path", type=Path, default=None, help="fp32 model folder")
    parser.add_argument(
        "--runtimes", default=None, help=f"comma list of {', '.join(ALL_RUNTIMES)} (default: all)"
    )
    parser.add_argument("--images", type=int, default=64, help="images per measurement")
    parser.add_argument("--texts", type=int, default=256, help="texts per measurement")
    parser.add_argument("--repeats", type=int, default=20, help="single-query repeats")
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput rounds (the best one is reported)"
    )
    parser.add_argument("--threads", type=int, default=None, help="runtime threads (0 = cores)")
    parser.add_argument("--calibrate", type=Path, default=None, help="int8: calibration folder")
    parser.add_argument("--pictures", type=int, default=64, help="int8: calibration pictures")
    parser.add_argument("--no-int8", action="store_true", help="skip both int8 runtimes")


def captions(n: int) -> list[str]:
    """Short, varied captions like the ones users type (about 8-12 tokens each)."""
    rng = np.random.default_rng(0)
    return [
        f"a {rng.choice(_COLOURS)} {rng.choice(_SHAPES)} {rng.choice(_PLACES)}" for _ in range(n)
    ]


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _best_ms(repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeats`` calls: on a shared machine the neighbours only add time."""
    return min(_seconds(fn) * 1000.0 for _ in range(max(repeats, 1)))


def _size_mb(folder: Path) -> float:
    from clipsearch.encoder.model_files import ModelFiles

    files = ModelFiles(folder)
    return round((files.textual.stat().st_size + files.visual.stat().st_size) / 1e6, 1)


class _Subject:
    """One runtime's encoder, its inputs and its best figures so far."""

    def __init__(self, name: str, enc: Any, folder: Path, args: argparse.Namespace) -> None:
        self.name, self.enc, self.folder = name, enc, folder
        # Generated pictures (not noise): a calibrated int8 model is judged on real-like input.
        from clipsearch.demo.shapes import HELDOUT_SEED, iter_samples

        pictures = iter_samples(max(args.images, 1), HELDOUT_SEED)
        self.pixels = np.stack([enc.preprocess(image) for image, _ in pictures])
        self.texts = captions(max(args.texts, 1))
        self.best: dict[str, float] = {}
        for batch in BATCHES:  # warm-up: session arenas sized for each batch
            enc.batch_size = batch
            enc.encode_pixels(self.pixels[:batch])
        enc.encode_texts_sync(self.texts[:32])

    def round(self) -> None:
        for batch in BATCHES:
            self.enc.batch_size = batch
            self._keep(f"images_per_s_b{batch}", len(self.pixels), self.pixels)
        self.enc.batch_size = 32
        rate = len(self.texts) / max(_seconds(lambda: self.enc.encode_texts_sync(self.texts)), 1e-9)
        self.best["texts_per_s"] = max(self.best.get("texts_per_s", 0.0), rate)

    def _keep(self, key: str, n: int, pixels: np.ndarray) -> None:
        rate = n / max(_seconds(lambda: self.enc.encode_pixels(pixels)), 1e-9)
        self.best[key] = max(self.best.get(key, 0.0), rate)

    def latency(self, repeats: int) -> dict[str, Any]:
        enc = self.enc
        textual = enc.load().textual
        ids, mask = enc.tokenize([QUERY])
        feeds = {"input_ids": ids, "attention_mask": mask} if textual.dynamic else None
        enc.encode_token_batch(ids, mask)
        out: dict[str, Any] = {
            "latency_ms_trimmed": round(
                _best_ms(repeats, lambda: enc.encode_token_batch(ids, mask)), 3
            ),
            "trimmed_tokens": int(mask.sum()) if textual.dynamic else int(ids.shape[1]),
            "full_tokens": int(ids.shape[1]),
        }
        if feeds is not None:  # the same query padded to the full context
            out["latency_ms_full"] = round(_best_ms(repeats, lambda: textual.session.run(feeds)), 3)
        else:  # the graph fixes the length: every query runs at the full context
            out["latency_ms_full"] = out["latency_ms_trimmed"]
        return out

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        self.enc.batch_size = 32
        return self.enc.encode_pixels(self.pixels[:32]), self.enc.encode_texts_sync(self.texts[:64])


def _int8_folder(src: Path, args: argparse.Namespace, tmp: Path, method: str) -> Path:
    from clipsearch.encoder.quantize import (
        STATIC,
        int8_folder,
        is_int8,
        quantize_model_dir,
        read_metadata,
    )

    sibling = int8_folder(src)
    source = read_metadata(src).get("fingerprint")
    meta = read_metadata(sibling)
    fresh = bool(source) and meta.get("source_fingerprint") == source
    if (
        method == STATIC
        and is_int8(sibling)
        and meta.get("quantization") == "int8-static"
        and fresh
    ):
        return sibling
    out = tmp / method
    print(f"quantizing ({method}) into {out} ...", file=sys.stderr, flush=True)
    quantize_model_dir(src, out, method=method, pictures=args.calibrate, count=args.pictures)
    return out


def _cosines(a: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> Any:
    img, txt = np.sum(a[0] * ref[0], axis=1), np.sum(a[1] * ref[1], axis=1)
    return {
        "image_min": round(float(img.min()), 5),
        "image_mean": round(float(img.mean()), 5),
        "text_min": round(float(txt.min()), 5),
        "text_mean": round(float(txt.mean()), 5),
    }


def format_table(result: dict[str, Any]) -> str:
    head = (
        f"encoder bench: {result['model']} dim={result['dim']} image_size={result['image_size']}"
        f" nproc={result['nproc']} threads={result['threads']} rounds={result['rounds']}"
    )
    lines = [
        head,
        "| runtime | precision | img/s b8 | img/s b32 | texts/s | 1q ms | 1q@77 ms | MB "
        "| x fp32 b8 | x fp32 b32 | x fp32 1q | cos img min/mean | cos text mean |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ref = result["runtimes"].get("fp32")
    for name, r in result["runtimes"].items():
        if not isinstance(r, dict):
            lines.append(f"| {name} | {r} |")
            continue
        ratio = {}
        for key in ("images_per_s_b8", "images_per_s_b32"):
            ratio[key] = r[key] / ref[key] if ref else float("nan")
        # Latency: fp32's time over this one's, so > 1 is faster, like the throughputs.
        ratio["lat"] = ref["latency_ms_trimmed"] / r["latency_ms_trimmed"] if ref else float("nan")
        cos = r.get("cosine_to_fp32") or {}
        lines.append(
            f"| {name} | {r['precision']} | {r['images_per_s_b8']:.1f} | "
            f"{r['images_per_s_b32']:.1f} | {r['texts_per_s']:.1f} | "
            f"{r['latency_ms_trimmed']:.2f} | {r.get('latency_ms_full', float('nan')):.2f} | "
            f"{r['size_mb']:.1f} | {ratio['images_per_s_b8']:.2f} | "
            f"{ratio['images_per_s_b32']:.2f} | {ratio['lat']:.2f} | "
            f"{cos.get('image_min', 1.0)}/{cos.get('image_mean', 1.0)} | "
            f"{cos.get('text_mean', 1.0)} |"
        )
    return "\n".join(lines)


def _wanted(args: argparse.Namespace) -> list[str]:
    from clipsearch.encoder.openvino_session import openvino_available

    names = args.runtimes.split(",") if args.runtimes else list(ALL_RUNTIMES)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in ALL_RUNTIMES]
    if unknown:
        raise ValueError(f"unknown runtime(s) {', '.join(unknown)} (of {', '.join(ALL_RUNTIMES)})")
    if args.no_int8:
        names = [n for n in names if not n.startswith("int8")]
    if not args.runtimes and not openvino_available():
        names.remove("openvino")  # only asked-for runtimes are reported as missing
    return ["fp32", *[n for n in names if n != "fp32"]]


def run(args: argparse.Namespace) -> int:
    from clipsearch.core.config import get_settings
    from clipsearch.encoder.local import LocalEncoder
    from clipsearch.encoder.model_files import ModelFiles, resolve_model_files
    from clipsearch.encoder.protocol import EncoderError
    from clipsearch.encoder.quantize import DYNAMIC, STATIC

    settings = get_settings()
    args.threads = settings.encoder_threads if args.threads is None else args.threads
    try:
        names = _wanted(args)
        src = args.model_path or resolve_model_files(settings).folder
    except (EncoderError, ValueError) as exc:
        print(f"clipsearch bench encoder: {exc}", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    subjects: list[_Subject] = []
    with tempfile.TemporaryDirectory(prefix="clipsearch-bench-encoder-") as tmp:
        for name in names:
            try:
                folder, runtime = src, name
                if name.startswith("int8"):
                    method = STATIC if name == "int8" else DYNAMIC
                    folder, runtime = _int8_folder(src, args, Path(tmp), method), "int8"
                enc = LocalEncoder(
                    ModelFiles(folder),
                    model_name=settings.model_name,
                    threads=args.threads,
                    runtime=runtime,
                )
                subjects.append(_Subject(name, enc, folder, args))
            except Exception as exc:  # a bench reports what failed and carries on
                if name == "fp32":
                    print(f"clipsearch bench encoder: {exc}", file=sys.stderr)
                    return 1
                results[name] = f"failed: {exc}"
        for _ in range(max(args.rounds, 1)):
            for subject in subjects:
                subject.round()
        reference = subjects[0].vectors()
        for subject in subjects:
            figures: dict[str, Any] = {k: round(v, 2) for k, v in subject.best.items()}
            figures.update(subject.latency(args.repeats))
            figures["precision"] = subject.enc.precision
            figures["size_mb"] = _size_mb(subject.folder)
            figures["fingerprint"] = subject.enc.fingerprint
            if subject is not subjects[0]:
                figures["cosine_to_fp32"] = _cosines(subject.vectors(), reference)
            results[subject.name] = figures
    first = subjects[0].enc
    result: dict[str, Any] = {
        "bench": "encoder",
        "model": first.model_name,
        "dim": first.dim,
        "image_size": first.image_size,
        "dynamic_text": first.dynamic_text_length,
        "nproc": os.cpu_count(),
        "threads": args.threads,
        "images": args.images,
        "texts": args.texts,
        "rounds": args.rounds,
        "runtimes": {n: results[n] for n in names if n in results},
    }
    print(format_table(result))
    print(json.dumps(result, sort_keys=True))
    return 0
