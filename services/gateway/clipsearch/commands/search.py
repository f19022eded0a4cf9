"""``clipsearch search``: query a running gateway and print the hits as a table, each with
the URL that opens its picture (``--json``: the gateway's answer as it came)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipsearch.commands._gateway import (
    EXIT_USAGE,
    add_gateway_args,
    default_url,
    missing_file,
    open_client,
    report,
)

if TYPE_CHECKING:
    from clipsearch.client import Hit, SearchOptions

__all__ = ["default_url", "format_table", "hit_url", "register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("search", help="search a running gateway by text or image")
    parser.add_argument("query", nargs="?", help="text query (or use --image)")
    parser.add_argument("--image", type=Path, help="search with this image file")
    parser.add_argument("--target", choices=("images", "texts"), default="images")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--offset", type=int, default=None, help="skip this many hits (paging)")
    parser.add_argument("--min-score", type=float, default=None, help="drop hits below this")
    parser.add_argument(
        "--filter", default=None, help='JSON object over the metadata: \'{"album": "home"}\''
    )
    parser.add_argument(
        "--rerank", action="store_true", help="re-score the hits as CLIP ranks (softmax)"
    )
    parser.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    add_gateway_args(parser)
    parser.add_argument(
        "--expand", action="store_true", help="add the server's dictionary expansions"
    )
    parser.set_defaults(handler=run)


def hit_url(base: str, hit: Hit) -> str:
    """The absolute URL that opens the hit's picture ('' for a text without one)."""
    path = hit.get("image_url")
    if not path:
        image_id = hit.get("image_id") or (hit["id"] if hit.get("text") is None else None)
        path = f"/v1/images/{image_id}/file" if image_id else ""
    return f"{base}{path}" if path else ""


def format_table(hits: Sequence[Hit], target: str, base: str | None = None) -> str:
    """Rank, score, id prefix and the caption/text (or source) of each hit; with ``base``,
    the URL to open each hit's picture on the line under it."""
    rows = [("#", "score", "id", "text" if target == "texts" else "caption / source")]
    links: list[str] = [""]
    for rank, hit in enumerate(hits, 1):
        label = hit.get("text") if target == "texts" else hit.get("caption") or hit.get("source")
        score = f"{hit['score']:.4f}"
        if hit.get("rerank_score") is not None:  # rerank: the softmax beside the cosine
            score += f" p={hit['rerank_score']:.3f}"
        rows.append((str(rank), score, str(hit["id"])[:12], str(label or "")))
        links.append(hit_url(base, hit) if base is not None else "")
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines: list[str] = []
    for r, link in zip(rows, links, strict=True):
        lines.append(f"{r[0]:>{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
        if link:
            lines.append(f"{'':>{widths[0]}}  {link}")
    return "\n".join(lines)


def _options(args: argparse.Namespace) -> SearchOptions | str:
    """The search options, or what is wrong with ``--filter``."""
    options: SearchOptions = {"target": args.target, "top_k": args.top_k}
    if args.offset is not None:
        options["offset"] = args.offset
    if args.min_score is not None:
        options["min_score"] = args.min_score
    if args.rerank:
        options["rerank"] = True
    if args.filter is not None:
        try:
            value = json.loads(args.filter)
        except ValueError as exc:
            return f"--filter is not JSON: {exc}"
        if not isinstance(value, dict):
            return '--filter must be a JSON object, e.g. {"album": "home"}'
        options["filter"] = value
    return options


def run(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    if (args.query is None) == (args.image is None):
        print("clipsearch search: give a text query or --image FILE (not both)", file=sys.stderr)
        return EXIT_USAGE
    options = _options(args)
    if isinstance(options, str):
        print(f"clipsearch search: {options}", file=sys.stderr)
        return EXIT_USAGE
    # A missing picture is this machine's problem: say so, and send nothing.
    if args.image is not None and (code := missing_file("search", args.image)) is not None:
        return code
    try:
        with open_client(args) as gateway:
            if args.image is not None:
                result = gateway.search_image(args.image, **options)
            else:
                result = gateway.search_text(args.query, expand=args.expand, **options)
            base = gateway.url
    except OSError as exc:  # the --image file, unreadable after all
        print(f"clipsearch search: cannot read {args.image}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GatewayError as exc:
        return report("search", exc)
    if args.json:
        print(json.dumps(result))
        return 0
    print(format_table(result["hits"], args.target, base))
    print(f"({len(result['hits'])} hits, {result['took_ms']:.1f} ms)")
    for used in result.get("expansions") or []:
        print(f"expanded {used['text']!r} -> {', '.join(repr(t) for t in used['expansions'])}")
    return 0
