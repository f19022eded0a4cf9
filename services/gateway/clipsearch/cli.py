"""The ``clipsearch`` command line: serve, ingest, search, evaluate, bench."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from clipsearch.api.app import create_app
    from clipsearch.core.config import get_settings
    from clipsearch.core.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        # Uvicorn's own access log duplicates our metrics; keep it for debug only.
        access_log=settings.log_level == "debug",
    )
    return 0


def _not_yet(name: str) -> Handler:
    def run(_: argparse.Namespace) -> int:
        print(f"clipsearch {name}: not yet implemented", file=sys.stderr)
        return 2

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP gateway")
    serve.add_argument("--host", default=None, help="bind address (default: settings)")
    serve.add_argument("--port", type=int, default=None, help="port (default: settings)")
    serve.set_defaults(handler=_serve)

    for name in ("ingest", "search", "evaluate", "bench"):
        stub = sub.add_parser(name, help=f"{name} (not yet)")
        stub.set_defaults(handler=_not_yet(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)
