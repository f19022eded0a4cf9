"""``clipsearch serve``: run the HTTP gateway."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="run the HTTP gateway")
    parser.add_argument("--host", default=None, help="bind address (default: settings)")
    parser.add_argument("--port", type=int, default=None, help="port (default: settings)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from clipsearch.api.app import StartupError, create_app
    from clipsearch.core.config import get_settings
    from clipsearch.core.logging import configure_logging

    settings = get_settings()
    # The bind address the access rules judge is the one actually used.
    overrides = {"host": args.host, "port": args.port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v})
    configure_logging(settings.log_level)
    try:
        app = create_app(settings)
    except StartupError as exc:
        print(f"clipsearch serve: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Uvicorn's access log duplicates our metrics; keep it for debugging only.
        access_log=settings.log_level == "debug",
    )
    return 0
