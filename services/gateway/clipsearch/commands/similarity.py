"""``clipsearch similarity (--image FILE | --image-id ID) TEXT...``: how well each text
fits a picture, as CLIP scores it (``POST /v1/similarity``): the cosine, and the softmax
over the texts given."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from clipsearch.commands._gateway import (
    EXIT_USAGE,
    add_gateway_args,
    missing_file,
    open_client,
    report,
)


def register(sub: Any) -> None:
    parser = sub.add_parser("similarity", help="score a picture against texts (CLIP)")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="the texts to score")
    image = parser.add_mutually_exclusive_group(required=True)
    image.add_argument("--image", type=Path, help="a picture file")
    image.add_argument("--image-id", help="a stored picture (in --collection)")
    parser.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    add_gateway_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    if args.image is not None and (code := missing_file("similarity", args.image)) is not None:
        return code
    try:
        with open_client(args) as gateway:
            if args.image is not None:
                result = gateway.similarity(args.texts, args.image)
            else:
                result = gateway.similarity(args.texts, image_id=args.image_id)
    except OSError as exc:
        print(f"clipsearch similarity: cannot read {args.image}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayError as exc:
        return report("similarity", exc)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'cosine':>8}  {'softmax':>8}  text")
    for s in result["scores"]:
        print(f"{s['cosine']:>8.4f}  {s['softmax']:>8.4f}  {s['text']}")
    return 0
