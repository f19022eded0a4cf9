"""``clipsearch search``: query a running gateway and print the hits as a table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipsearch.client import Hit, SearchOptions


def register(sub: Any) -> None:
    parser = sub.add_parser("search", help="search a running gateway by text or image")
    parser.add_argument("query", nargs="?", help="text query (or use --image)")
    parser.add_argument("--image", type=Path, help="search with this image file")
    parser.add_argument("--target", choices=("images", "texts"), default="images")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument(
        "--expand", action="store_true", help="add the server's dictionary expansions"
    )
    parser.add_argument("--collection", default=None, help="collection group (default: server's)")
    parser.add_argument("--url", default=None, help="gateway URL (default: http://HOST:PORT)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.set_defaults(handler=run)


def default_url() -> str:
    from clipsearch.core.config import get_settings

    s = get_settings()
    return f"http://{s.host}:{s.port}"


def format_table(hits: Sequence[Hit], target: str) -> str:
    """Rank, score, id prefix and the caption/text (or source) of each hit."""
    rows = [("#", "score", "id", "text" if target == "texts" else "caption / source")]
    for rank, hit in enumerate(hits, 1):
        label = hit.get("text") if target == "texts" else hit.get("caption") or hit.get("source")
        rows.append((str(rank), f"{hit['score']:.4f}", str(hit["id"])[:12], str(label or "")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:>{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows
    )


def run(args: argparse.Namespace) -> int:
    from clipsearch.client import Client, GatewayError
    from clipsearch.commands import api_key

    if (args.query is None) == (args.image is None):
        print("clipsearch search: give a text query or --image FILE (not both)", file=sys.stderr)
        return 2
    url = args.url or default_url()
    options: SearchOptions = {"target": args.target, "top_k": args.top_k}
    try:
        with Client(
            url, collection=args.collection, timeout=args.timeout, api_key=api_key()
        ) as gateway:
            if args.image is not None:
                result = gateway.search_image(args.image, **options)
            else:
                result = gateway.search_text(args.query, expand=args.expand, **options)
    except OSError as exc:  # the --image file
        print(f"clipsearch search: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        if exc.status:
            print(f"error {exc.status} {exc.code}: {exc.message}", file=sys.stderr)
        else:
            print(f"clipsearch search: {exc}", file=sys.stderr)
        return 1
    print(format_table(result["hits"], args.target))
    print(f"({len(result['hits'])} hits, {result['took_ms']:.1f} ms)")
    for used in result.get("expansions") or []:
        print(f"expanded {used['text']!r} -> {', '.join(repr(t) for t in used['expansions'])}")
    return 0
