"""What every command that talks to a running gateway shares: its ``--url``,
``--collection`` and ``--timeout`` options, the one :class:`~clipsearch.client.Client`
built from them, and one way to report a :class:`~clipsearch.client.GatewayError` (it names
the URL it tried, so a wrong ``--url`` is plain to see)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipsearch.client import Client, GatewayError

# Exit codes: 1 = the gateway refused or could not be reached; 2 = the command line or a
# local file is wrong (nothing was sent).
EXIT_GATEWAY = 1
EXIT_USAGE = 2


def add_gateway_args(
    parser: Any, *, timeout: float = 60.0, collection: bool = True, inherit: bool = False
) -> None:
    """``--url``, ``--collection``, ``--timeout``. ``inherit``: a verb's parser whose parent
    has them too; its options then have no default, so ``jobs --url X ls`` keeps ``X``."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if inherit else value

    parser.add_argument(
        "--url", default=default(None), help="gateway URL (default: http://HOST:PORT)"
    )
    if collection:
        parser.add_argument(
            "--collection", default=default(None), help="collection (default: server's)"
        )
    parser.add_argument(
        "--timeout", type=float, default=default(timeout), help="seconds per request"
    )


def default_url() -> str:
    from clipsearch.core.config import get_settings

    s = get_settings()
    return f"http://{s.host}:{s.port}"


def open_client(args: argparse.Namespace) -> Client:
    """The client for ``--url``/``--collection``/``--timeout``, with ``CLIPSEARCH_API_KEY``."""
    from clipsearch.client import Client
    from clipsearch.commands import api_key

    return Client(
        args.url or default_url(),
        collection=getattr(args, "collection", None),
        timeout=args.timeout,
        api_key=api_key(),
    )


def report(command: str, exc: GatewayError) -> int:
    """One line on stderr: the status, code and message, and the URL tried."""
    print(f"clipsearch {command}: {exc}", file=sys.stderr)
    return EXIT_USAGE if exc.code == "invalid_url" else EXIT_GATEWAY


def missing_file(command: str, path: Path, what: str = "file") -> int | None:
    """``EXIT_USAGE`` after saying so when the local ``path`` is not a readable file."""
    if path.is_file():
        return None
    kind = "not a file" if path.exists() else f"no such {what}"
    print(f"clipsearch {command}: {kind}: {path}", file=sys.stderr)
    return EXIT_USAGE
