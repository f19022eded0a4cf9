"""``clipsearch ingest DIR|FILES [--urls FILE] [--captions FILE]``: bulk ingest through a
running gateway. Files are uploaded (in jobs of ``--per-job`` files, so the number of open
files stays bounded); URLs are submitted for the server to fetch. A progress bar runs until
every job ends, then a summary prints; the exit code is 1 if any item failed."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

from clipsearch.client import JOB_RUNNING, Client, GatewayError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def register(sub: Any) -> None:
    parser = sub.add_parser("ingest", help="bulk-ingest folders, files or URLs into a gateway")
    parser.add_argument("inputs", nargs="*", type=Path, help="image files or folders (recursive)")
    parser.add_argument("--urls", type=Path, help="a file with one image URL per line")
    parser.add_argument("--captions", type=Path, help="captions.csv or a Flickr *.token file")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="gateway base URL")
    parser.add_argument("--collection", default=None, help="collection group")
    parser.add_argument("--metadata", default=None, help="JSON object stored with each image")
    parser.add_argument("--per-job", type=int, default=500, help="files uploaded per job")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after seconds")
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
    from clipsearch.commands import api_key

    try:
        files = collect(args.inputs)
    except FileNotFoundError as exc:
        print(f"clipsearch ingest: no such file or folder: {exc}", file=sys.stderr)
        return 2
    urls = (
        [ln.strip() for ln in args.urls.read_text().splitlines() if ln.strip()] if args.urls else []
    )
    if not files and not urls:
        print("clipsearch ingest: nothing to ingest", file=sys.stderr)
        return 2
    try:
        metadata = json.loads(args.metadata) if args.metadata else None
    except ValueError as exc:  # refused here, before any file is uploaded
        print(f"clipsearch ingest: --metadata is not JSON: {exc}", file=sys.stderr)
        return 2
    captions = (args.captions.name, args.captions.read_bytes()) if args.captions else None
    job_ids: list[str] = []
    with Client(args.url, collection=args.collection, timeout=600, api_key=api_key()) as client:
        try:
            for start in range(0, max(len(files), 1), args.per_job):
                chunk = files[start : start + args.per_job]
                job_urls = urls if start == 0 else []
                job_ids.append(_submit(client, chunk, job_urls, metadata, captions))
            result = _follow(client, job_ids, args.timeout)
        except GatewayError as exc:
            print(f"clipsearch ingest: {exc}", file=sys.stderr)
            return 1
        except RuntimeError as exc:
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
) -> str:
    """Start one job; while the gateway is busy (429), wait as long as it says and retry."""
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
        return accepted["job_id"]


def _follow(client: Client, job_ids: list[str], timeout: float) -> dict[str, Any]:
    """Poll until every job ends, drawing one progress bar over all of them."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        views = [client.job(j) for j in job_ids]
        total = sum(v["counts"]["total"] for v in views)
        done = sum(v["counts"]["total"] - v["counts"]["pending"] for v in views)
        rate = done / max(time.monotonic() - started, 1e-6)
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r[{bar}] {done}/{total} {rate:6.1f} img/s", end="", file=sys.stderr)
        if all(v["status"] not in JOB_RUNNING for v in views):
            print(file=sys.stderr)
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still running after {timeout:g} s: {job_ids}")
        time.sleep(0.5)
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
