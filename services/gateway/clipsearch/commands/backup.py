"""``clipsearch export NAME --out FILE`` and ``clipsearch import NAME FILE``: back up a
collection of a running gateway into a file and restore it (README: "Export format"),
streamed to and from disk through :class:`clipsearch.client.Client`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    exp = sub.add_parser("export", help="export a collection (records, vectors, files) to a file")
    exp.add_argument("name", help="collection to export")
    exp.add_argument("--out", type=Path, required=True, help="file to write")
    exp.add_argument("--format", choices=("parquet", "npz"), default="parquet")
    exp.add_argument("--blobs", action="store_true", help="include the original files (a tar)")
    exp.add_argument("--filter", default=None, help="JSON metadata filter: export only matches")
    _common(exp)
    exp.set_defaults(handler=run_export)
    imp = sub.add_parser("import", help="restore an export file into a new or empty collection")
    imp.add_argument("name", help="collection to restore into (new, or empty)")
    imp.add_argument("file", type=Path, help="the export file")
    _common(imp)
    imp.set_defaults(handler=run_import)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="gateway URL (default: http://HOST:PORT)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for data (0: no limit)"
    )


def _client(args: argparse.Namespace) -> Any:
    from clipsearch.client import Client
    from clipsearch.commands import api_key
    from clipsearch.commands.search import default_url

    return Client(args.url or default_url(), api_key=api_key())


def _fail(command: str, exc: Exception) -> int:
    from clipsearch.client import GatewayError

    if isinstance(exc, GatewayError) and exc.status:
        print(f"error {exc.status} {exc.code}: {exc.message}", file=sys.stderr)
    else:
        print(f"clipsearch {command}: {exc}", file=sys.stderr)
    return 1


def run_export(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    try:
        flt = json.loads(args.filter) if args.filter else None
    except ValueError as exc:
        print(f"clipsearch export: --filter is not JSON: {exc}", file=sys.stderr)
        return 2
    try:
        with _client(args) as gateway:
            size = gateway.export_collection(
                args.name,
                args.out,
                format=args.format,
                blobs=args.blobs,
                filter=flt,
                timeout=args.timeout or None,
            )
    except (GatewayError, OSError) as exc:
        return _fail("export", exc)
    print(json.dumps({"collection": args.name, "file": str(args.out), "bytes": size}))
    return 0


def run_import(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    try:
        with _client(args) as gateway:
            result = gateway.import_collection(args.name, args.file, timeout=args.timeout or None)
    except (GatewayError, OSError) as exc:
        return _fail("import", exc)
    print(json.dumps(result))
    return 0
