"""``clipsearch ingest DIR|FILES [--urls FILE] [--captions FILE]``: bulk ingest through a
running gateway. Files are uploaded (in jobs of ``--per-job`` files, so the number of open
files stays bounded); URLs are submitted for the server to fetch. A progress bar runs until
every job ends, then a summary prints; the exit code is 1 if any item failed."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

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
    import httpx

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
    fields: dict[str, str] = {}
    if args.metadata:
        fields["metadata"] = args.metadata
    if args.collection:
        fields["collection"] = args.collection
    captions = (args.captions.name, args.captions.read_bytes()) if args.captions else None
    job_ids: list[str] = []
    with httpx.Client(base_url=args.url, timeout=600) as client:
        try:
            for start in range(0, max(len(files), 1), args.per_job):
                chunk = files[start : start + args.per_job]
                extra = {"urls": "\n".join(urls)} if start == 0 and urls else {}
                job_ids.append(_submit(client, chunk, {**fields, **extra}, captions))
            result = _follow(client, job_ids, args.timeout)
        except httpx.HTTPError as exc:
            print(f"clipsearch ingest: gateway error: {exc}", file=sys.stderr)
            return 1
        except RuntimeError as exc:
            print(f"clipsearch ingest: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(result))
    return 1 if result["failed"] else 0


def _submit(
    client: Any, files: list[Path], fields: dict[str, str], captions: tuple[str, bytes] | None
) -> str:
    with contextlib.ExitStack() as stack:
        parts: list[tuple[str, Any]] = [
            ("files", (f.name, stack.enter_context(f.open("rb")), "application/octet-stream"))
            for f in files
        ]
        if captions is not None:
            parts.append(("captions_file", (captions[0], captions[1], "text/plain")))
        while True:
            r = client.post("/v1/ingest", files=parts or None, data=fields)
            if r.status_code != 429:
                break
            wait = float(r.headers.get("Retry-After", "5"))
            print(f"gateway busy; retrying in {wait:g} s", file=sys.stderr)
            time.sleep(wait)
            for _, (_, fh, _) in parts:
                if hasattr(fh, "seek"):
                    fh.seek(0)
    if r.status_code not in (200, 202):
        raise RuntimeError(f"submit refused ({r.status_code}): {r.text}")
    return str(r.json()["job_id"])


def _follow(client: Any, job_ids: list[str], timeout: float) -> dict[str, Any]:
    """Poll until every job ends, drawing one progress bar over all of them."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        views = [client.get(f"/v1/jobs/{j}", params={"limit": 0}).json() for j in job_ids]
        total = sum(v["counts"]["total"] for v in views)
        done = sum(v["counts"]["total"] - v["counts"]["pending"] for v in views)
        rate = done / max(time.monotonic() - started, 1e-6)
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        print(f"\r[{bar}] {done}/{total} {rate:6.1f} img/s", end="", file=sys.stderr)
        if all(v["status"] not in ("queued", "running") for v in views):
            print(file=sys.stderr)
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still running after {timeout:g} s: {job_ids}")
        time.sleep(0.5)
    summary = {
        k: sum(v["counts"][k] for v in views) for k in ("total", "stored", "duplicate", "failed")
    }
    statuses = ", ".join(sorted({v["status"] for v in views}))
    took = time.monotonic() - started
    print(
        f"{summary['stored']} stored, {summary['duplicate']} duplicate, {summary['failed']} "
        f"failed of {summary['total']} in {took:.1f} s ({statuses})",
        file=sys.stderr,
    )
    for v in views:
        if v["counts"]["failed"]:
            bad = client.get(
                f"/v1/jobs/{v['job_id']}", params={"item_status": "failed", "limit": 20}
            )
            for item in bad.json()["items"]:
                print(f"  failed: {item['source']}: {item['error']}", file=sys.stderr)
    return {"jobs": job_ids, "seconds": round(time.monotonic() - started, 2), **summary}
