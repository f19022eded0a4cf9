"""``clipsearch bench {encoder,search,ingest}``: benchmarks that measure, never fail on time.

Each benchmark lives in ``clipsearch.bench.<name>`` and exposes ``add_arguments(parser)``
and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

BENCHES = ("encoder", "search", "ingest")


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="run a benchmark (encoder, search, ingest)")
    benches = parser.add_subparsers(dest="bench", required=True)
    for name in BENCHES:
        bench = benches.add_parser(name, help=f"benchmark: {name}")
        try:
            module = importlib.import_module(f"clipsearch.bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"clipsearch.bench.{name}":
                raise
            bench.set_defaults(handler=_not_yet(name))
            continue
        module.add_arguments(bench)
        bench.set_defaults(handler=module.run)


def _not_yet(name: str) -> Any:
    def run(_: argparse.Namespace) -> int:
        print(f"clipsearch bench {name}: not yet implemented")
        return 2

    return run
