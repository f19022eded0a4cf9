"""``clipsearch bench {encoder,search,ingest,load,pixels}``: benchmarks that measure, never
fail on time.

Each benchmark lives in ``clipsearch.bench.<name>`` and exposes ``add_arguments(parser)``
and ``run(args) -> int``.
"""

from __future__ import annotations

import importlib
from typing import Any

BENCHES = ("encoder", "search", "ingest", "load", "pixels")


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="run a benchmark (encoder, search, ingest, load, pixels)")
    benches = parser.add_subparsers(dest="bench", required=True)
    for name in BENCHES:
        bench = benches.add_parser(name, help=f"benchmark: {name}")
        module = importlib.import_module(f"clipsearch.bench.{name}")
        module.add_arguments(bench)
        bench.set_defaults(handler=module.run)
