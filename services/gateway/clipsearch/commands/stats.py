"""``clipsearch stats``: what a running gateway holds (per collection counts, model and
fingerprint, index), its encoder and store health, and its latencies; ``--json`` as sent."""

from __future__ import annotations

import argparse
import json
from typing import Any

from clipsearch.commands._gateway import add_gateway_args, open_client, report


def register(sub: Any) -> None:
    parser = sub.add_parser("stats", help="counts, models, health and latency of a gateway")
    parser.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    add_gateway_args(parser, collection=False)
    parser.set_defaults(handler=run)


def format_stats(stats: dict[str, Any]) -> str:
    enc, store = stats.get("encoder", {}), stats.get("store", {})
    lines = [
        f"encoder  {enc.get('mode')}  {enc.get('model_name')}  dim {enc.get('dim')}  "
        f"fingerprint {str(enc.get('fingerprint'))[:19]}  health {enc.get('health')}",
        f"store    {store.get('kind')}  health {store.get('health')}"
        + (f"  uri {store['uri']}" if store.get("uri") else ""),
        f"blobs    {stats.get('blobs', {}).get('bytes', 0)} bytes   "
        f"uptime {stats.get('uptime_s', 0):.0f} s",
    ]
    for kind, window in (stats.get("latency") or {}).items():
        if window.get("count"):
            lines.append(
                f"latency  {kind}: {window['count']} calls, p50 {window.get('p50_ms')} ms, "
                f"p95 {window.get('p95_ms')} ms"
            )
    lines.append("collection         images    texts  index    model / fingerprint")
    for name, c in sorted((stats.get("collections") or {}).items()):
        counts = c.get("counts", {})
        lines.append(
            f"{name:<16} {counts.get('images', 0):>8} {counts.get('texts', 0):>8}  "
            f"{c.get('index_type')!s:<8} {c.get('model_name')} {str(c.get('fingerprint'))[:19]}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    try:
        with open_client(args) as gateway:
            stats = gateway.stats()
    except GatewayError as exc:
        return report("stats", exc)
    print(json.dumps(stats) if args.json else format_stats(stats))
    return 0
