"""``clipsearch evaluate``: Recall@1/5/10 both ways on a captions CSV."""

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
    parser.add_argument("--captions", type=Path, required=True, help="CSV: image_path,caption")
    parser.add_argument(
        "--images", type=Path, default=None, help="image folder (default: the CSV's folder)"
    )
    parser.add_argument(
        "--model-path", type=Path, default=None, help="model folder (overrides settings)"
    )
    parser.add_argument(
        "--url", default=None, help="evaluate through a running gateway (not yet implemented)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clipsearch.core.config import get_settings
    from clipsearch.core.wiring import build_encoder
    from clipsearch.encoder.protocol import EncoderError
    from clipsearch.evaluation import evaluate, format_table, read_captions

    if args.url:
        print(
            "clipsearch evaluate: --url (through a running gateway) is not implemented yet; "
            "run without --url to use the configured encoder directly",
            file=sys.stderr,
        )
        return 2
    try:
        data = read_captions(args.captions, args.images)
    except (OSError, ValueError) as exc:
        print(f"clipsearch evaluate: {exc}", file=sys.stderr)
        return 2
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
