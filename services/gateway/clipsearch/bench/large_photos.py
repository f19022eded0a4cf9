"""Large photos in ``clipsearch bench ingest``: 4000x3000 JPEGs, decode + preprocess with and
without draft mode, and one ``POST /v1/images`` per photo.

The photos are generated: a shape scene (:mod:`clipsearch.demo.shapes`) scaled up to the
camera size, with sensor-like noise so the JPEG has a camera's entropy (a flat upscale would
compress, and decode, far faster than a photo). Draft mode (``Image.draft``, what the gateway
does, see :func:`clipsearch.encoder.preprocess.decode_image`) lets libjpeg decode at 1/2, 1/4
or 1/8 scale while keeping at least twice the model's input on the shortest side.
"""

from __future__ import annotations

import io
import statistics
import time
from typing import Any

import numpy as np

SIZE = (4000, 3000)


def photos(n: int, seed: int, size: tuple[int, int] = SIZE) -> list[bytes]:
    """``n`` distinct camera-sized JPEGs (quality 90), deterministic in ``(n, seed)``."""
    from PIL import Image

    from clipsearch.demo.shapes import iter_samples

    rng = np.random.default_rng(seed)
    out = []
    for image, _ in iter_samples(n, seed):
        big = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))
        noise = rng.normal(0.0, 6.0, size=big.shape)
        pixels = np.clip(big.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _best_ms(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def preprocess_ms(enc: Any, data: list[bytes], max_pixels: int, repeats: int) -> dict[str, float]:
    """Median over the photos of the best-of-``repeats`` ms of decode + preprocess, with
    and without draft mode (alternating per photo, so both see the same neighbours)."""
    from clipsearch.encoder.preprocess import load_and_preprocess

    c = enc.config
    size = int(c.image_size)
    with_draft: list[float] = []
    without: list[float] = []
    for photo in data:
        for draft, into in ((True, with_draft), (False, without)):
            into.append(
                _best_ms(
                    lambda photo=photo, draft=draft: load_and_preprocess(
                        photo, size, max_pixels, c.mean, c.std, draft=draft
                    ),
                    repeats,
                )
            )
    return {"draft_ms": statistics.median(with_draft), "no_draft_ms": statistics.median(without)}


def post_ms(client: Any, data: list[bytes], repeats: int) -> float:
    """Median over the photos of the best-of-``repeats`` ms of one ``POST /v1/images`` of
    it (decode, preprocess, encode, thumbnail, blob and vector writes). Re-posting the same
    bytes is a duplicate (no second write), so every repeat after the first posts a copy with
    one more byte of JPEG padding after the end marker: new bytes, the same picture."""
    times = []
    for i, photo in enumerate(data):
        best = float("inf")
        for r in range(max(repeats, 1)):
            body = photo + b"\0" * r
            start = time.perf_counter()
            items = client.add_images([(f"large_{i}_{r}.jpg", body)])
            best = min(best, time.perf_counter() - start)
            if items[0]["status"] not in ("stored", "duplicate"):
                raise RuntimeError(f"large photo {i}: {items[0]}")
        times.append(best * 1000.0)
    return statistics.median(times)


def measure(enc: Any, client: Any, data: list[bytes], settings: Any, repeats: int) -> Any:
    """Every large-photo figure, in one run, with the ratios."""
    pre = preprocess_ms(enc, data, settings.max_pixels, repeats)
    posted = post_ms(client, data, repeats)
    one = np.stack([_draft_pixels(enc, data[0], settings.max_pixels)])
    encode = _best_ms(lambda: enc.encode_pixels(one), repeats)
    return {
        "n": len(data),
        "size": f"{SIZE[0]}x{SIZE[1]}",
        "mean_bytes": int(sum(map(len, data)) / max(len(data), 1)),
        "draft_ms": round(pre["draft_ms"], 2),
        "no_draft_ms": round(pre["no_draft_ms"], 2),
        "draft_speedup": round(pre["no_draft_ms"] / max(pre["draft_ms"], 1e-9), 2),
        "encode_one_ms": round(encode, 2),
        "post_ms": round(posted, 2),
        "post_vs_draft_preprocess_plus_encode": round(
            posted / max(pre["draft_ms"] + encode, 1e-9), 2
        ),
    }


def _draft_pixels(enc: Any, data: bytes, max_pixels: int) -> Any:
    from clipsearch.encoder.preprocess import load_and_preprocess

    c = enc.config
    pixels, _ = load_and_preprocess(data, int(c.image_size), max_pixels, c.mean, c.std)
    return pixels


def format_lines(r: dict[str, Any]) -> list[str]:
    return [
        "",
        f"large photos: {r['n']} JPEGs {r['size']} (~{r['mean_bytes'] / 1e6:.1f} MB each), "
        "median over photos of best-of-repeats",
        "",
        "| step | ms per photo |",
        "|---|---|",
        f"| decode + preprocess, draft mode | {r['draft_ms']:.1f} |",
        f"| decode + preprocess, full decode | {r['no_draft_ms']:.1f} |",
        f"| encode one (image tower, batch 1) | {r['encode_one_ms']:.1f} |",
        f"| POST /v1/images, one photo | {r['post_ms']:.1f} |",
        "",
        f"draft speed-up = {r['draft_speedup']:.2f}x; POST / (draft preprocess + encode) = "
        f"{r['post_vs_draft_preprocess_plus_encode']:.2f}",
    ]
