"""``clipsearch delete ID...``: remove stored pictures (with their linked texts and, when no
other collection holds it, the file) or, with ``--text``, texts."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from clipsearch.commands._gateway import EXIT_GATEWAY, add_gateway_args, open_client, report


def register(sub: Any) -> None:
    parser = sub.add_parser("delete", help="delete stored pictures (or texts) by id")
    parser.add_argument("ids", nargs="+", metavar="ID", help="the sha256 id(s)")
    parser.add_argument("--text", action="store_true", help="the ids are texts, not images")
    parser.add_argument("--json", action="store_true", help="one JSON answer per line")
    add_gateway_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    failed = 0
    with open_client(args) as gateway:
        for item_id in args.ids:
            try:
                done = gateway.delete_text(item_id) if args.text else gateway.delete_image(item_id)
            except GatewayError as exc:
                report("delete", exc)
                failed += 1
                continue
            if args.json:
                print(json.dumps(done))
            else:
                extra = "" if args.text else f" ({done['texts_deleted']} linked texts)"
                print(f"deleted {done['id']}{extra}")
    if failed:
        print(f"clipsearch delete: {failed} of {len(args.ids)} not deleted", file=sys.stderr)
    return EXIT_GATEWAY if failed else 0
