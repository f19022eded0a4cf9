"""``clipsearch collections [ls|show|create|delete|migrate]``: the collections of a running
gateway. ``ls`` lists them with model, counts and whether this gateway can serve them,
``show NAME`` prints one, ``create NAME [--model M] [--index HNSW|FLAT --param K=V]`` makes
one (idempotent), ``delete NAME`` drops it, ``migrate NAME --model M`` moves it to another
model and follows the job's progress (server-sent events) to its end, unless ``--no-wait``.
``--json`` prints the gateway's answer as sent. Creating, dropping and migrating need an
admin key (``CLIPSEARCH_API_KEY``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clipsearch.commands._gateway import EXIT_USAGE, add_gateway_args, open_client, report

if TYPE_CHECKING:
    from clipsearch.client import Client, CollectionInfo, JobView

JOB_OK = ("done",)


def register(sub: Any) -> None:
    parser = sub.add_parser("collections", help="list, show, create, delete or migrate collections")
    verbs = parser.add_subparsers(dest="verb")
    ls = verbs.add_parser("ls", help="every collection")
    show = verbs.add_parser("show", help="one collection")
    show.add_argument("name")
    create = verbs.add_parser("create", help="create a collection (idempotent; admin)")
    create.add_argument("name")
    create.add_argument("--model", default=None, help="a configured model (default: the main)")
    create.add_argument("--index", choices=("HNSW", "FLAT"), default=None, help="index type")
    create.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="index param, e.g. M=32"
    )
    delete = verbs.add_parser("delete", help="drop a collection, its records and files (admin)")
    delete.add_argument("name")
    migrate = verbs.add_parser("migrate", help="move a collection to another model (admin)")
    migrate.add_argument("name")
    migrate.add_argument("--model", required=True, help="the configured model to move to")
    migrate.add_argument("--no-wait", action="store_true", help="start the job, do not follow")
    json_help = "print the gateway's JSON answer"
    parser.add_argument("--json", action="store_true", help=json_help)
    add_gateway_args(parser, collection=False)
    for verb in (ls, show, create, delete, migrate):
        verb.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
        add_gateway_args(verb, collection=False, inherit=True)
    parser.set_defaults(handler=run)


def _count(info: CollectionInfo) -> str:
    c = info["counts"]
    return f"{c.get('images', 0)} images, {c.get('texts', 0)} texts"


def format_collections(infos: Sequence[CollectionInfo]) -> str:
    if not infos:
        return "no collections"
    rows = [("collection", "model", "dim", "index", "records")]
    for i in infos:
        model = i["model_name"] + ("" if i["servable"] else " (not servable)")
        rows.append((i["name"], model, str(i["dim"]), i["index_type"], _count(i)))
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    return "\n".join(
        "  ".join(f"{cell:<{widths[k]}}" for k, cell in enumerate(r[:4])) + "  " + r[4]
        for r in rows
    )


def format_collection(info: CollectionInfo) -> str:
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["created_at"]))
    threshold = info.get("min_score_auto")
    lines = [
        f"collection  {info['name']}",
        f"model       {info['model_name']} ({info['fingerprint'][:16]}, {info['dim']}-d)",
        f"index       {info['index_type']} {json.dumps(info['index_params'], sort_keys=True)}",
        f"records     {_count(info)}",
        f"created     {created}",
        "servable    " + ("yes" if info["servable"] else f"no: {info.get('reason')}"),
        "auto score  " + ("-" if threshold is None else f"{threshold:.4f}"),
    ]
    migration = info.get("migration")
    if migration:
        lines.append(f"migrating   to {migration['model_name']}")
    return "\n".join(lines)


def _params(pairs: Sequence[str]) -> dict[str, int] | None:
    """``K=V`` integers; None when one is malformed (said on stderr)."""
    params: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            params[key.strip()] = int(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            print(f"clipsearch collections create: --param wants K=INT: {pair!r}", file=sys.stderr)
            return None
    return params


def _follow(gateway: Client, job_id: str, total: int) -> JobView:
    """The migration job's views from its event stream, drawn as progress, to its end."""
    from clipsearch.commands.progress import IngestProgress

    last: JobView | None = None
    with IngestProgress(total, label="migrate", unit="records/s") as progress:
        for last in gateway.job_events(job_id):
            progress.update(last)
        if last is None:  # no event at all: the job is gone; say what it was
            last = gateway.job(job_id)
        progress.update(last, final=True)
    return last


def run(args: argparse.Namespace) -> int:
    from clipsearch.client import GatewayError

    verb = args.verb or "ls"
    answer: Any
    code = 0
    params: dict[str, int] | None = {}
    if verb == "create" and (params := _params(args.param)) is None:
        return EXIT_USAGE
    try:
        with open_client(args) as gateway:
            if verb == "ls":
                answer = gateway.collections()
                text = format_collections(answer)
            elif verb == "show":
                answer = gateway.collection_info(args.name)
                text = format_collection(answer)
            elif verb == "create":
                answer, created = gateway.create_collection(
                    args.name, model=args.model, index_type=args.index, index_params=params
                )
                said = "created" if created else "exists with this spec"
                text = f"{args.name}: {said}\n{format_collection(answer)}"
            elif verb == "delete":
                answer = gateway.delete_collection(args.name)
                text = (
                    f"{args.name}: deleted ({answer['images']} images, "
                    f"{answer['blobs_removed']} files removed, "
                    f"{answer['jobs_cancelled']} jobs cancelled)"
                )
            else:
                accepted = gateway.migrate_collection(args.name, args.model)
                answer = accepted
                text = f"{args.name}: migrating to {args.model}, job {accepted['job_id']}"
                if not args.no_wait:
                    answer = _follow(gateway, accepted["job_id"], accepted["total"])
                    text = f"{args.name}: migration {answer['status']} (job {answer['job_id']})"
                    if answer["status"] not in JOB_OK:
                        code = 1
                        text += f": {answer.get('error') or answer['counts']}"
    except GatewayError as exc:
        return report(f"collections {verb}", exc)
    print(json.dumps(answer) if args.json else text)
    return code
