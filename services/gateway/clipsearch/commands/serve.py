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
    from clipsearch.api.slow_clients import head_deadline_protocol
    from clipsearch.core.config import get_settings
    from clipsearch.core.logging import configure_logging
    from clipsearch.usecases.pixel_budget import return_freed_pixels

    settings = get_settings()
    # The bind address the access rules judge is the one actually used.
    overrides = {"host": args.host, "port": args.port}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v})
    configure_logging(settings.log_level)
    # Before any thread starts: freed pictures go back to the system (see pixel_budget).
    return_freed_pixels()
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
        # Bounded connections: an idle keep-alive is closed after this; past the connection
        # cap uvicorn answers 503 itself (0 = no cap; the per-class caps still apply).
        timeout_keep_alive=settings.http_keep_alive_s,
        limit_concurrency=settings.http_max_connections or None,
        # h11 refuses a request head over this many bytes (431), so a slow or endless
        # header block cannot hold memory; uvicorn's default is h11's 16 KiB, kept explicit.
        h11_max_incomplete_event_size=16 * 1024,
        # ...and a head must arrive whole within this (uvicorn alone never times it out).
        http=head_deadline_protocol(settings.http_header_timeout_s),
    )
    return 0
