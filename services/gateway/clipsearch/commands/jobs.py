"""``clipsearch jobs [ls|show|cancel]``: the ingest jobs of a running gateway (a key below
admin sees only its own). ``ls`` lists them newest first, ``show ID`` prints one with its
failed items, ``cancel ID`` stops it; ``--json`` prints the gateway's answer as sent."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clipsearch.commands._gateway import add_gateway_args, open_client, report

if TYPE_CHECKING:
    from clipsearch.client import JobView

STATUSES = ("queued", "running", "done", "partial", "failed", "cancelled")


def register(sub: Any) -> None:
    parser = sub.add_parser("jobs", help="list, show or cancel ingest jobs")
    verbs = parser.add_subparsers(dest="verb")
    ls = verbs.add_parser("ls", help="jobs, newest first")
    ls.add_argument("--status", choices=STATUSES, default=None)
    ls.add_argument("--limit", type=int, default=20)
    show = verbs.add_parser("show", help="one job, with its failed items")
    show.add_argument("job_id")
    show.add_argument("--items", type=int, default=20, help="failed items to list")
    cancel = verbs.add_parser("cancel", help="stop a queued or running job")
    cancel.add_argument("job_id")
    json_help = "print the gateway's JSON answer"
    parser.add_argument("--json", action="store_true", help=json_help)
    add_gateway_args(parser, collection=False)
    for verb in (ls, show, cancel):
        verb.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
        add_gateway_args(verb, collection=False, inherit=True)
    # Bare `clipsearch jobs` is `jobs ls` with ls's defaults.
    parser.set_defaults(handler=run, status=None, limit=20, items=20)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _counts(view: JobView) -> str:
    c = view["counts"]
    return (
        f"{c['total'] - c['pending']}/{c['total']} done: {c['stored']} stored, "
        f"{c['duplicate']} duplicate, {c['failed']} failed"
    )


def format_jobs(views: Sequence[JobView]) -> str:
    if not views:
        return "no jobs"
    rows = [("job", "status", "collection", "created", "progress")]
    for v in views:
        rows.append((v["job_id"], v["status"], v["collection"], _when(v["created_at"]), _counts(v)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(r[:4])) + "  " + r[4]
        for r in rows
    )


def format_job(view: JobView) -> str:
    lines = [
        f"job        {view['job_id']}",
        f"status     {view['status']}" + (f" ({view['error']})" if view.get("error") else ""),
        f"collection {view['collection']}",
        f"progress   {_counts(view)}",
        f"rate       {view.get('rate', 0):.1f} items/s"
        + (f", ETA {view['eta_s']:.0f} s" if view.get("eta_s") else ""),
        f"created    {_when(view['created_at'])}   started {_when(view.get('started_at'))}"
        f"   finished {_when(view.get('finished_at'))}",
    ]
    for item in view.get("items") or []:
        lines.append(f"  failed: {item['source']}: {item['error']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    verb = args.verb or "ls"
    answer: Any
    try:
        with open_client(args) as gateway:
            if verb == "ls":
                answer = gateway.jobs(status=args.status, limit=args.limit)
                text = format_jobs(answer)
            elif verb == "show":
                answer = gateway.job(args.job_id, item_status="failed", limit=args.items)
                text = format_job(answer)
            else:
                answer = gateway.cancel_job(args.job_id)
                # A job that had already ended comes back unchanged: nothing to stop.
                said = "cancelled" if answer["status"] == "cancelled" else "already ended"
                text = f"{answer['job_id']}: {said}, {answer['status']} ({_counts(answer)})"
    except GatewayError as exc:
        return report(f"jobs {verb}", exc)
    print(json.dumps(answer) if args.json else text)
    return 0
