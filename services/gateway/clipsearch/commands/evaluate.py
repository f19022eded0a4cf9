"""``clipsearch evaluate``: Recall@1/5/10 both ways on a labelled set: ``captions.csv``,
a Flickr ``*.token`` file or a Karpathy split JSON (see :mod:`clipsearch.evaluation_sets`),
and the model's ``min_score: "auto"`` threshold (see :mod:`clipsearch.evaluation`).

``--store-threshold --collection NAME --url URL`` evaluates with the local model (the
settings' or ``--model-path``) and stores its threshold with the collection through
``PUT /v1/collections/{name}/threshold``, with the model's fingerprint: the gateway refuses
it (409 ``model_mismatch``) unless the collection uses that model."""

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
        default=None,
        help="with --url: the collection to upload into and search (default: eval); with "
        "--store-threshold: the collection to store the threshold with",
    )
    parser.add_argument(
        "--store-threshold",
        action="store_true",
        help='evaluate locally, then store the min_score "auto" threshold with --collection '
        "on the gateway at --url (admin key)",
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

    if args.store_threshold and not (args.url and args.collection):
        print(
            "clipsearch evaluate: --store-threshold needs --url and --collection", file=sys.stderr
        )
        return 2
    if args.url and args.model_path is not None and not args.store_threshold:
        # The gateway encodes with its own model; a local one would be silently ignored.
        print("clipsearch evaluate: --model-path and --url exclude each other", file=sys.stderr)
        return 2
    try:
        data = read_set(args.captions, args.images, args.split)
    except (OSError, ValueError) as exc:
        print(f"clipsearch evaluate: {exc}", file=sys.stderr)
        return 2
    if args.url and not args.store_threshold:
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
    if args.store_threshold:
        code = _store_threshold(args, result)
        if code:
            return code
    print(format_table(result))
    print(json.dumps({"evaluate": result}, sort_keys=True))
    return 0


def _store_threshold(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """PUT the threshold of ``result`` for its model; the stored value into ``result``."""
    from clipsearch.client import Client, GatewayError
    from clipsearch.commands import api_key

    if "threshold" not in result:
        print("clipsearch evaluate: a threshold needs at least two images", file=sys.stderr)
        return 2
    value = result["threshold"]["min_score"]
    try:
        with Client(args.url, timeout=args.timeout, api_key=api_key()) as gw:
            info = gw.set_threshold(args.collection, value, model_fingerprint=result["fingerprint"])
    except GatewayError as exc:
        print(f"clipsearch evaluate: {exc}", file=sys.stderr)
        return 2 if exc.code == "invalid_url" else 1
    result["stored"] = {"collection": info["name"], "min_score_auto": info.get("min_score_auto")}
    return 0


def _run_url(args: argparse.Namespace, data: Any) -> int:
    """--url: the same figures, from a running gateway's answers."""
    from clipsearch.client import GatewayError
    from clipsearch.commands import api_key
    from clipsearch.evaluation import format_table
    from clipsearch.evaluation_http import evaluate_url

    try:
        result = evaluate_url(
            data, args.url, args.collection or "eval", timeout=args.timeout, api_key=api_key()
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
