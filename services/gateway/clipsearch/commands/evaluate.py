"""``clipsearch evaluate``: Recall@1/5/10 both ways on a labelled set: ``captions.csv``,
a Flickr ``*.token`` file or a Karpathy split JSON (see :mod:`clipsearch.evaluation_sets`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "evaluate", help="retrieval quality (R@1/5/10, text->image and image->text)"
    )
    parser.add_argument(
        "--captions",
        type=Path,
        required=True,
        help="captions.csv (image_path,caption), Flickr *.token, or Karpathy dataset_*.json",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="Karpathy JSON: the split to evaluate (default: test; 'all' for every image)",
    )
    parser.add_argument(
        "--images", type=Path, default=None, help="image folder (default: the file's folder)"
    )
    parser.add_argument(
        "--model-path", type=Path, default=None, help="model folder (overrides settings)"
    )
    parser.add_argument(
        "--url",
        default=None,
        help="evaluate through a running gateway (uploads the pictures, then searches)",
    )
    parser.add_argument(
        "--collection",
        default="eval",
        help="with --url: the collection to upload into and search (default: eval)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="with --url: seconds per request"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clipsearch.bootstrap import build_encoder
    from clipsearch.core.config import get_settings
    from clipsearch.encoder.protocol import EncoderError
    from clipsearch.evaluation import evaluate, format_table
    from clipsearch.evaluation_sets import read_set

    if args.url and args.model_path is not None:
        # The gateway encodes with its own model; a local one would be silently ignored.
        print("clipsearch evaluate: --model-path and --url exclude each other", file=sys.stderr)
        return 2
    try:
        data = read_set(args.captions, args.images, args.split)
    except (OSError, ValueError) as exc:
        print(f"clipsearch evaluate: {exc}", file=sys.stderr)
        return 2
    if args.url:
        return _run_url(args, data)
    settings = get_settings()
    if args.model_path is not None:
        if not args.model_path.is_dir():
            print(f"clipsearch evaluate: {args.model_path} is not a folder", file=sys.stderr)
            return 2
        settings = settings.model_copy(update={"model_path": args.model_path})

    async def main() -> dict[str, Any]:
        encoder = build_encoder(settings)
        try:
            return await evaluate(encoder, data)
        finally:
            await encoder.close()

    try:
        result = asyncio.run(main())
    except EncoderError as exc:
        print(f"clipsearch evaluate: {exc}", file=sys.stderr)
        return 1
    print(format_table(result))
    print(json.dumps({"evaluate": result}, sort_keys=True))
    return 0


def _run_url(args: argparse.Namespace, data: Any) -> int:
    """--url: the same figures, from a running gateway's answers."""
    from clipsearch.client import GatewayError
    from clipsearch.commands import api_key
    from clipsearch.evaluation import format_table
    from clipsearch.evaluation_http import evaluate_url

    try:
        result = evaluate_url(
            data, args.url, args.collection, timeout=args.timeout, api_key=api_key()
        )
    except GatewayError as exc:
        if exc.code == "invalid_url":
            print(f"clipsearch evaluate: bad --url {args.url!r}: {exc}", file=sys.stderr)
            return 2
        print(f"clipsearch evaluate: {exc}", file=sys.stderr)
        return 1
    print(format_table(result))
    print(json.dumps({"evaluate": result}, sort_keys=True))
    return 0
