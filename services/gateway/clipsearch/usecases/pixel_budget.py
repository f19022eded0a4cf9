"""A process-wide budget of decoded pixels in flight, in megapixels.

Decoding is what costs memory: a 105 KB PNG of 36 Mpx is ~110 MB of RGB once decoded, and
several such searches at once took RSS from 0.4 to 1.45 GB when only the thread count
bounded them. Every decode (:func:`clipsearch.usecases.imaging.inspect_image`: uploads,
image searches, ingest jobs) first takes its weight from this budget, read from the image
header before any pixel is allocated, and gives it back when the decode is over; a decode
that does not fit waits. A picture larger than the whole budget still runs, alone.

Decodes run in worker threads, so the budget is a ``threading.Condition``, not an asyncio
primitive. ``peak_mpx`` records the most ever held, for tests and RELIABILITY.md.

The budget alone does not bound RSS: glibc keeps freed memory in per-thread arenas, and
its dynamic mmap threshold soon serves Pillow's multi-MB pixel blocks from them, so six
decodes one after another in six threads still end at six pictures' worth of RSS.
:func:`return_freed_pixels` (called by ``clipsearch serve``) fixes the threshold at 1 MiB:
large buffers are then mapped and unmapped, and a finished decode gives its memory back
(``clipsearch bench pixels``: 1.12 GB peak without a budget, 0.44 GB with 64 Mpx).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

MPX = 1_000_000
log = logging.getLogger(__name__)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


class PixelBudget:
    """At most ``budget_mpx`` megapixels decoded at once (see the module docstring)."""

    def __init__(self, budget_mpx: float) -> None:
        self.budget = max(1, int(budget_mpx * MPX))
        self.held = 0
        self.peak = 0
        self._cond = threading.Condition()

    @property
    def peak_mpx(self) -> float:
        return self.peak / MPX

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget (capped at all of it) for the ``with`` block."""
        weight = min(max(pixels, 0), self.budget)
        with self._cond:
            # Fits, or nothing else is held (an oversized picture then runs alone).
            self._cond.wait_for(lambda: self.held == 0 or self.held + weight <= self.budget)
            self.held += weight
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._cond:
                self.held -= weight
                self._cond.notify_all()


def decoded_pixels(data: bytes, draft_size: int | None) -> int:
    """Pixels the decode of ``data`` will allocate, from its header alone (0 if unreadable:
    the decode itself then fails at once, costing nothing). A JPEG decoded in draft mode
    (``draft_size``) costs its reduced size, as :func:`~clipsearch.encoder.preprocess.
    decode_image` reduces it."""
    from PIL import Image

    from clipsearch.encoder.preprocess import DRAFT_FACTOR

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if draft_size is not None and img.format in ("JPEG", "MPO"):
                target = draft_size * DRAFT_FACTOR
                scale = 1
                while scale < 8 and min(width, height) // (scale * 2) >= target:
                    scale *= 2
                return -(-width // scale) * -(-height // scale)
            return int(width) * int(height)
    except Exception:  # not an image, or a header Pillow refuses: decode says why
        return 0


@lru_cache(maxsize=4)
def shared_budget(budget_mpx: float) -> PixelBudget:
    """The one budget of this process for ``budget_mpx`` (settings are process-wide)."""
    return PixelBudget(budget_mpx)


def return_freed_pixels(threshold_bytes: int = 1 << 20) -> bool:
    """Have glibc map allocations over ``threshold_bytes`` on their own, so that freeing a
    decoded picture returns its memory to the system; False where that is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
        ok = bool(mallopt is not None and mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except OSError:
        ok = False
    if not ok:
        log.info("mallopt not available: freed pixel memory may stay in the process")
    return ok
