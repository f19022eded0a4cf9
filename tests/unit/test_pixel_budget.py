"""The decode budget: concurrent decodes never hold more megapixels than the budget (an
oversized picture runs alone), weighed from the header before any pixel is decoded."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import jpeg_bytes, png_bomb

from clipsearch.usecases.imaging import inspect_image
from clipsearch.usecases.pixel_budget import MPX, PixelBudget, decoded_pixels


def test_concurrent_decodes_stay_within_the_budget() -> None:
    budget = PixelBudget(5.0)  # room for one 4-Mpx picture at a time, not two
    png = png_bomb(2000, 2000)
    with ThreadPoolExecutor(6) as pool:
        seen = list(
            pool.map(lambda _: inspect_image(png, max_pixels=10**8, budget=budget), range(6))
        )
    assert all(s.info.width == 2000 for s in seen)
    assert budget.peak == 4 * MPX
    assert budget.held == 0


def test_small_pictures_share_the_budget() -> None:
    budget = PixelBudget(2.0)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work(_: int) -> None:
        nonlocal inside, most
        with budget.hold(MPX // 2):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(16)))
    assert most == 4  # 4 x 0.5 Mpx fit in 2 Mpx at once; never more
    assert budget.peak == 2 * MPX


def test_a_picture_larger_than_the_budget_runs_alone() -> None:
    budget = PixelBudget(1.0)
    png = png_bomb(1500, 1500)  # 2.25 Mpx > 1 Mpx
    seen = inspect_image(png, max_pixels=10**8, budget=budget)
    assert seen.info.width == 1500
    assert budget.peak == budget.budget  # capped at the whole budget, not refused
    assert budget.held == 0


def test_weights_come_from_the_header() -> None:
    assert decoded_pixels(png_bomb(600, 400), draft_size=224) == 240_000
    # A large JPEG decodes in draft mode at 1/2 here (shortest side >= 2 x 224 kept).
    assert decoded_pixels(jpeg_bytes(1800, 1000), draft_size=224) == 900 * 500
    assert decoded_pixels(jpeg_bytes(1800, 1000), draft_size=None) == 1800 * 1000
    assert decoded_pixels(b"not an image", draft_size=224) == 0
