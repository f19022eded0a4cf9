"""``clipsearch keys add``: make a new API key and the entry that configures it.

The key is printed once, on the first line of stdout; the second line is the entry
(``scope:name:scrypt:salt:hash``) to append to ``CLIPSEARCH_API_KEYS`` (comma-separated)
or to a line of ``CLIPSEARCH_API_KEYS_FILE``. The server keeps only the entry, so a lost key
cannot be recovered: make a new one. Two plain lines keep it scriptable::

    { read -r key; read -r entry; } < <(clipsearch keys add --scope write --name ci)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("keys", help="make API keys for the gateway")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="print a new key (once) and its config entry")
    add.add_argument("--scope", choices=("read", "write", "admin"), required=True)
    add.add_argument("--name", default=None, help="who holds it (default: <scope>-<random>)")
    add.set_defaults(handler=run_add)


def run_add(args: argparse.Namespace) -> int:
    import secrets

    from clipsearch.core.keys import Scope, make_entry, new_key

    name = args.name or f"{args.scope}-{secrets.token_hex(3)}"
    key = new_key()
    try:
        entry = make_entry(key, Scope.parse(args.scope), name)
    except ValueError as exc:
        print(f"clipsearch keys add: {exc}", file=sys.stderr)
        return 2
    print(key)
    print(entry.line())
    print(
        f"line 1: the {args.scope} key {name!r}, shown only now: give it to its holder "
        "(CLIPSEARCH_API_KEY for the CLI, `Authorization: Bearer <key>` for HTTP).\n"
        "line 2: append it to CLIPSEARCH_API_KEYS (comma-separated) or as a line of "
        "CLIPSEARCH_API_KEYS_FILE, then restart the gateway.",
        file=sys.stderr,
    )
    return 0
