"""The ``clipsearch`` command line: serve, ingest, search, evaluate, bench.

Each subcommand lives in ``clipsearch.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``handler``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]
COMMANDS = ("serve", "ingest", "search", "evaluate", "bench")


def _not_yet(name: str) -> Handler:
    def run(_: argparse.Namespace) -> int:
        print(f"clipsearch {name}: not yet implemented", file=sys.stderr)
        return 2

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipsearch", description="clipsearch command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"clipsearch.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"clipsearch.commands.{name}":
                raise
            stub = sub.add_parser(name, help=f"{name} (not yet)")
            stub.set_defaults(handler=_not_yet(name))
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)
