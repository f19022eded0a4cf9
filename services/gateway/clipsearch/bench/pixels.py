"""``clipsearch bench pixels``: gateway RSS under concurrent searches with one huge picture.

A gateway process on loopback per budget (``--budgets``, megapixels; a budget larger than
all pictures at once is "no budget"), then ``--clients`` image searches at once, each
uploading the same small-on-disk, large-in-pixels PNG (``--side`` x ``--side`` zeros, a few
hundred KB compressed; RGB, as a photo decodes), ``--rounds`` times. Reported per budget:
the gateway's RSS before, its peak (``VmHWM`` from ``/proc``) and the wall time of the
rounds. Linux only; it measures, it never fails on a figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from clipsearch.bench.loopback import GatewayProcess
from clipsearch.client import Client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budgets", default="10000,64", help="megapixel budgets, comma list")
    parser.add_argument("--clients", type=int, default=6, help="searches at once")
    parser.add_argument("--rounds", type=int, default=3, help="times each client searches")
    parser.add_argument("--side", type=int, default=6000, help="the PNG is side x side")
    parser.add_argument("--model-path", type=Path, default=None, help="default: settings")


def png_of_zeros(width: int, height: int, *, rgb: bool = False) -> bytes:
    """A valid PNG (grayscale, or RGB) of ``width`` x ``height`` zeros, a few hundred KB
    compressed, written chunk by chunk so that building it never allocates the pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    colour = 2 if rgb else 0  # the PNG colour types: truecolour, greyscale
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, colour, 0, 0, 0])
    comp = zlib.compressobj(9)
    row = b"\x00" * (width * (3 if rgb else 1) + 1)  # filter byte + samples
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _measure(budget: float, args: argparse.Namespace, png: bytes, model: Path | None) -> Any:
    with tempfile.TemporaryDirectory(prefix="clipsearch-pixels-") as tmp:
        env = {
            "CLIPSEARCH_DATA_DIR": str(Path(tmp) / "data"),
            "CLIPSEARCH_DECODE_BUDGET_MPX": str(budget),
            "CLIPSEARCH_MAX_PIXELS": str(max(40_000_000, args.side**2)),
            "CLIPSEARCH_MAX_UPLOAD_BYTES": str(max(20 * 1024 * 1024, 2 * len(png))),
        }
        if model is not None:
            env["CLIPSEARCH_MODEL_PATH"] = str(model)
        with (Path(tmp) / "gateway.log").open("ab") as log:
            gw = GatewayProcess(env, log)
            try:
                gw.start()
                assert gw.proc is not None
                with Client(gw.url) as c:
                    c.add_images([("seed.png", png_of_zeros(64, 64))])
                    c.search_text("warm up")
                before = _kb(gw.proc.pid, "VmRSS")
                errors: list[str] = []

                def search() -> None:
                    with Client(gw.url, timeout=300) as c:
                        for _ in range(args.rounds):
                            try:
                                c.search_image(("big.png", png), top_k=1)
                            except Exception as exc:
                                errors.append(str(exc))

                started = time.perf_counter()
                threads = [threading.Thread(target=search) for _ in range(args.clients)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                wall = time.perf_counter() - started
                return {
                    "budget_mpx": budget,
                    "rss_before_mb": round(before / 1024),
                    "rss_peak_mb": round(_kb(gw.proc.pid, "VmHWM") / 1024),
                    "wall_s": round(wall, 1),
                    "searches": args.clients * args.rounds,
                    "errors": errors[:3],
                }
            finally:
                gw.stop()


def run(args: argparse.Namespace) -> int:
    from clipsearch.core.config import get_settings

    model = args.model_path or get_settings().model_path
    png = png_of_zeros(args.side, args.side, rgb=True)
    print(f"PNG {args.side}x{args.side} = {args.side**2 / 1e6:.0f} Mpx, {len(png) // 1024} KB")
    rows = [_measure(float(b), args, png, model) for b in args.budgets.split(",") if b.strip()]
    print("| budget (Mpx) | RSS before (MB) | RSS peak (MB) | wall (s) | searches | errors |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['budget_mpx']:g} | {r['rss_before_mb']} | {r['rss_peak_mb']} "
              f"| {r['wall_s']} | {r['searches']} | {len(r['errors'])} |")  # fmt: skip
    print(json.dumps(rows))
    return 0
