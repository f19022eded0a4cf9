"""``clipsearch quantize``: an int8 copy of a model folder, a model of its own.

Static by default: the image tower calibrated on ``--calibrate DIR`` (your own pictures) or
on pictures the project generates; see :mod:`clipsearch.encoder.quantize`. The copy goes to
``<model folder>-int8`` unless ``--out`` says otherwise; ``CLIPSEARCH_ENCODER_RUNTIME=int8``
then loads it. Its fingerprint differs from the fp32 model's, so it needs a collection of its
own (or a re-ingest).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("quantize", help="write an int8 copy of the model (static, calibrated)")
    parser.add_argument(
        "--model-path", type=Path, default=None, help="fp32 model folder (default: settings)"
    )
    parser.add_argument(
        "--calibrate",
        type=Path,
        default=None,
        help="a folder of your pictures to calibrate on (default: generated pictures)",
    )
    parser.add_argument("--pictures", type=int, default=64, help="calibration pictures (64)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder to write (default: <model folder>-int8)"
    )
    parser.add_argument(
        "--dynamic", action="store_true", help="dynamic quantisation instead (no calibration)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clipsearch.core.config import get_settings
    from clipsearch.encoder.model_files import resolve_model_files
    from clipsearch.encoder.protocol import EncoderError
    from clipsearch.encoder.quantize import DYNAMIC, STATIC, int8_folder, quantize_model_dir

    if args.calibrate is not None and not args.calibrate.is_dir():
        print(f"clipsearch quantize: --calibrate {args.calibrate} is not a folder", file=sys.stderr)
        return 2
    if args.pictures < 1:
        print("clipsearch quantize: --pictures must be at least 1", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        src = args.model_path or resolve_model_files(settings).folder
        out = args.out or int8_folder(src)
        if out.resolve() == src.resolve():
            print("clipsearch quantize: --out must differ from the model folder", file=sys.stderr)
            return 2
        print(f"quantizing {src} -> {out} ...", flush=True)
        meta = quantize_model_dir(
            src,
            out,
            method=DYNAMIC if args.dynamic else STATIC,
            pictures=args.calibrate,
            count=args.pictures,
            model_name=settings.model_name,
        )
    except (EncoderError, OSError, ValueError) as exc:
        print(f"clipsearch quantize: {exc}", file=sys.stderr)
        return 1
    detail = meta.get("quantization_detail", {}).get("visual", "")
    print(f"wrote {out}: {meta['name']} ({meta['quantization']}) in {meta['quantize_seconds']} s")
    if detail:
        print(f"image tower: {detail}")
    print(f"fingerprint {meta['fingerprint']} (fp32 model: {meta['source_fingerprint']})")
    print(
        f"use it: CLIPSEARCH_ENCODER_RUNTIME=int8 (with CLIPSEARCH_MODEL_PATH={src}, or "
        f"CLIPSEARCH_MODEL_PATH={out}); it is a model of its own: a new collection or re-ingest"
    )
    return 0
