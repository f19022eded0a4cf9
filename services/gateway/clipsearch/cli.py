"""The ``clipsearch`` command line: serve, ingest, search, similarity, stats, jobs,
collections, delete, evaluate, quantize, bench, keys, and export / import (both in
``commands.backup``).

Each subcommand lives in ``clipsearch.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser(s) and sets ``handler``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]
COMMANDS = (
    "serve",
    "ingest",
    "search",
    "similarity",
    "stats",
    "jobs",
    "collections",
    "delete",
    "evaluate",
    "quantize",
    "bench",
    "keys",
    "backup",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipsearch", description="clipsearch command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"clipsearch.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)
