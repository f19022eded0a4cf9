"""One prepared check for a machine with an NVIDIA GPU: the local encoder's image path on the
GPU at batch 1/8/32/128, and the ingest pipeline's ratio to the bare encoder there.

Not run yet: no GPU was lent to the session that wrote it (see BENCHMARKS.md). Run it from the
repository root, in the gateway's venv with ``onnxruntime-gpu`` in place of ``onnxruntime``::

    .venv/bin/pip install onnxruntime-gpu
    .venv/bin/python scripts/gpu_encoder_check.py --model-path .cache/ViT-B-32-random \\
        --out gpu-check.json

It prints a table and writes one JSON object (``--out``). It needs a model folder (the ViT-B-32
export of ``scripts/export_open_clip.py --random-init`` is the reference). Steps, each timed
on its own so a failing step still leaves the others' figures:

1. the providers ONNX Runtime offers, and that the CUDA provider really runs the graph (a
   session silently falls back to the CPU when CUDA libraries are missing: checked);
2. the image tower on CUDA at batch 1, 8, 32, 128 (best of ``--rounds``), and on the CPU at
   batch 32 for the ratio; cosine of CUDA's vectors to the CPU's;
3. the ingest pipeline (``POST /v1/ingest`` to a loopback gateway, as ``clipsearch bench
   ingest`` runs it) on an encoder whose sessions run on CUDA, over the bare encoder's rate
   on the same preprocessed batches.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "gateway"))

CUDA = "CUDAExecutionProvider"
BATCHES = (1, 8, 32, 128)


def _best(fn: Any, rounds: int) -> float:
    best = float("inf")
    for _ in range(max(rounds, 1)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _cuda_encoder(folder: Path, batch: int, provider: str) -> Any:
    from clipsearch.encoder.local import LocalEncoder
    from clipsearch.encoder.model_files import ModelFiles
    from clipsearch.encoder.ort_session import OrtSession

    enc = LocalEncoder(ModelFiles(folder), model_name="gpu-check", batch_size=batch)
    # The session says how the model runs: swap in CUDA sessions, the towers stay the same.
    providers = (provider, "CPUExecutionProvider")
    enc._new_session = lambda path: OrtSession(path, providers=providers)
    return enc


def check(args: argparse.Namespace) -> dict[str, Any]:
    import onnxruntime as ort

    from clipsearch.bench import ingest
    from clipsearch.core.config import EncoderMode, Settings
    from clipsearch.encoder.local import LocalEncoder
    from clipsearch.encoder.model_files import ModelFiles

    out: dict[str, Any] = {"providers": ort.get_available_providers()}
    if args.provider not in out["providers"]:
        out["error"] = f"onnxruntime has no {args.provider} (install onnxruntime-gpu)"
        return out
    enc = _cuda_encoder(args.model_path, 32, args.provider)
    visual = enc.load().visual
    session = getattr(visual.session, "_session", None)
    out["visual_providers"] = session.get_providers() if session is not None else None
    if not out["visual_providers"] or out["visual_providers"][0] != args.provider:
        out["error"] = f"the image tower did not land on CUDA: {out['visual_providers']}"
        return out
    size = enc.image_size
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((max(BATCHES), 3, size, size)).astype(np.float32)

    figures: dict[str, Any] = {}
    for batch in BATCHES:
        chunk = pixels[:batch]
        visual.encode(chunk)  # warm-up: CUDA kernels and arenas for this shape
        seconds = _best(lambda chunk=chunk: visual.encode(chunk), args.rounds)
        figures[f"b{batch}"] = {
            "images_per_s": round(batch / seconds, 1),
            "ms_per_batch": round(seconds * 1000, 2),
        }
    out["cuda"] = figures
    cpu = LocalEncoder(ModelFiles(args.model_path), model_name="gpu-check", batch_size=32)
    cpu.encode_pixels(pixels[:32])
    cpu_rate = 32 / _best(lambda: cpu.encode_pixels(pixels[:32]), args.rounds)
    out["cpu_b32_images_per_s"] = round(cpu_rate, 1)
    out["cuda_vs_cpu_b32"] = round(figures["b32"]["images_per_s"] / cpu_rate, 2)
    got, ref = visual.encode(pixels[:32]), cpu.encode_pixels(pixels[:32])
    out["cosine_cuda_vs_cpu_min"] = round(float(np.sum(got * ref, axis=1).min()), 6)

    settings = Settings(
        _env_file=None,
        encoder_mode=EncoderMode.local,
        model_path=args.model_path,
        encoder_batch_size=args.batch_size,
    )
    pics = ingest.pictures(args.n, seed=11)
    pipe_enc = _cuda_encoder(args.model_path, args.batch_size, args.provider)
    top, _cpu = ingest.ceiling(pipe_enc, pics, settings)
    with tempfile.TemporaryDirectory(prefix="clipsearch-gpu-check-") as tmp:
        job = ingest.pipeline(pipe_enc, pics, settings, Path(tmp) / "pipeline")
    out["ingest"] = {
        "n": args.n,
        "batch_size": args.batch_size,
        "ceiling_images_per_s": round(top, 1),
        "pipeline_images_per_s": round(job["images_per_s"], 1),
        "pipeline_vs_ceiling": round(job["images_per_s"] / top, 3),
        "status": job["status"],
        "searchable": job["searchable"],
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", type=Path, required=True, help="model folder")
    parser.add_argument("--n", type=int, default=1024, help="pictures for the ingest pipeline")
    parser.add_argument("--batch-size", type=int, default=128, help="ingest batch size")
    parser.add_argument("--rounds", type=int, default=5, help="best of N per batch size")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    parser.add_argument(
        "--provider", default=CUDA, help="dry run of the script on CPUExecutionProvider"
    )
    args = parser.parse_args(argv)
    result = check(args)
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if "cuda" in result:
        print("| batch | images/s (CUDA) | ms per batch |")
        print("|---|---|---|")
        for key, row in result["cuda"].items():
            print(f"| {key[1:]} | {row['images_per_s']} | {row['ms_per_batch']} |")
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if "error" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
