"""``clipsearch ingest DIR|FILES [--urls FILE] [--captions FILE]``: bulk ingest through a
running gateway. Files are uploaded (in jobs of ``--per-job`` files, so the number of open
files stays bounded); URLs are submitted for the server to fetch. A progress bar runs until
every job ends (drawn from the jobs' server-sent events, not by polling), then a summary
prints; the exit code is 1 if any item failed, 2 if a local file is missing."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

from clipsearch.client import Client, GatewayError, JobView
from clipsearch.commands._gateway import EXIT_USAGE, add_gateway_args, missing_file, open_client
from clipsearch.commands.progress import IngestProgress

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def register(sub: Any) -> None:
    parser = sub.add_parser("ingest", help="bulk-ingest folders, files or URLs into a gateway")
    parser.add_argument("inputs", nargs="*", type=Path, help="image files or folders (recursive)")
    parser.add_argument("--urls", type=Path, help="a file with one image URL per line")
    parser.add_argument("--captions", type=Path, help="captions.csv or a Flickr *.token file")
    add_gateway_args(parser, timeout=600.0)
    parser.add_argument("--metadata", default=None, help="JSON object stored with each image")
    parser.add_argument("--per-job", type=int, default=500, help="files uploaded per job")
    parser.set_defaults(handler=run)


def collect(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files += sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTS
            )
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(p)
    return files


def run(args: argparse.Namespace) -> int:
    try:
        files = collect(args.inputs)
    except FileNotFoundError as exc:
        print(f"clipsearch ingest: no such file or folder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for given in (args.urls, args.captions):
        if given is not None and (code := missing_file("ingest", given)) is not None:
            return code
    urls = (
        [ln.strip() for ln in args.urls.read_text().splitlines() if ln.strip()] if args.urls else []
    )
    if not files and not urls:
        print("clipsearch ingest: nothing to ingest", file=sys.stderr)
        return EXIT_USAGE
    try:
        metadata = json.loads(args.metadata) if args.metadata else None
    except ValueError as exc:  # refused here, before any file is uploaded
        print(f"clipsearch ingest: --metadata is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    captions = (args.captions.name, args.captions.read_bytes()) if args.captions else None
    jobs: list[tuple[str, int]] = []
    with open_client(args) as client:
        try:
            for start in range(0, max(len(files), 1), args.per_job):
                chunk = files[start : start + args.per_job]
                job_urls = urls if start == 0 else []
                jobs.append(_submit(client, chunk, job_urls, metadata, captions))
            result = _follow(client, jobs)
        except GatewayError as exc:
            print(f"clipsearch ingest: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(result))
    return 1 if result["failed"] else 0


def _submit(
    client: Client,
    files: list[Path],
    urls: list[str],
    metadata: dict[str, Any] | None,
    captions: tuple[str, bytes] | None,
) -> tuple[str, int]:
    """Start one job (its id and item count); while the gateway is busy (429), wait as long
    as it says and retry."""
    while True:
        try:
            accepted = client.ingest(files, urls=urls, captions_file=captions, metadata=metadata)
        except GatewayError as exc:
            if exc.status != 429:
                raise
            wait = exc.retry_after_s if exc.retry_after_s is not None else 5.0
            print(f"gateway busy; retrying in {wait:g} s", file=sys.stderr)
            time.sleep(wait)
            continue
        return accepted["job_id"], accepted["total"]


def _follow(client: Client, jobs: list[tuple[str, int]]) -> dict[str, Any]:
    """Follow each job's event stream to its end, drawing one progress over all of them."""
    started = time.monotonic()
    views: list[JobView] = []
    with IngestProgress(sum(total for _, total in jobs)) as progress:
        for job_id, _ in jobs:
            last: JobView | None = None
            for last in client.job_events(job_id):
                progress.update(last)
            if last is None:  # no event at all: the job is gone; say what it was
                last = client.job(job_id)
            progress.update(last, final=True)
            views.append(last)
    job_ids = [job_id for job_id, _ in jobs]
    summary = {
        # .get: a gateway from before `updated` existed does not send it
        k: sum(cast(dict[str, int], v["counts"]).get(k, 0) for v in views)
        for k in ("total", "stored", "updated", "duplicate", "failed")
    }
    statuses = ", ".join(sorted({v["status"] for v in views}))
    took = time.monotonic() - started
    print(
        f"{summary['stored']} stored, {summary['updated']} updated, "
        f"{summary['duplicate']} duplicate, {summary['failed']} "
        f"failed of {summary['total']} in {took:.1f} s ({statuses})",
        file=sys.stderr,
    )
    for v in views:
        if v["counts"]["failed"]:
            bad = client.job(v["job_id"], item_status="failed", limit=20)
            for item in bad["items"] or []:
                print(f"  failed: {item['source']}: {item['error']}", file=sys.stderr)
    return {"jobs": job_ids, "seconds": round(time.monotonic() - started, 2), **summary}
