"""The web app with API keys required (401 -> the key box -> it works), keyboard use, and a
390 px wide phone screen without horizontal scrolling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import THUMBNAILS_LOADED, TIMEOUT_MS, Site

pytestmark = pytest.mark.browser

PAGES = ["#/search?q=a+green+cross", "#/library", "#/ingest", "#/stats"]


def test_api_key_flow(page: Page, keyed_site: Site, artifacts: Path) -> None:
    assert keyed_site.key
    page.goto(keyed_site.url + "/#/search?q=a+green+cross")
    # The search is refused: the API's 401 is shown and the key box gets the keyboard.
    expect(page.locator("#search-status")).to_contain_text("missing_api_key")
    key_box = page.get_by_label("API key", exact=True)
    expect(key_box).to_be_focused()
    expect(page.locator("#key-status")).to_have_class(re.compile("error"))
    key_box.fill("not-the-key")
    key_box.press("Enter")
    expect(page.locator("#search-status")).to_contain_text("invalid_api_key")
    key_box.fill(keyed_site.key)
    key_box.press("Enter")
    expect(page.locator("#search-status")).to_contain_text("pictures for")
    captions = page.locator("#results li.card .caption").all_inner_texts()
    assert "green" in captions[0], captions
    assert "cross" in captions[0], captions
    # Thumbnails need the key too: fetched with the header, shown from blob: URLs.
    page.wait_for_function(THUMBNAILS_LOADED)
    expect(page.locator("#results img").first).to_have_attribute("src", re.compile("^blob:"))
    page.screenshot(path=artifacts / "keyed-search.png", full_page=True)
    # Kept in this tab's session storage: a reload still works, and nothing went to localStorage.
    page.reload()
    expect(page.locator("#search-status")).to_contain_text("pictures for")
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("sessionStorage.getItem('clipsearch.api_key')") == keyed_site.key
    # Stats and the live job stream work with the key as well.
    page.goto(keyed_site.url + "/#/stats")
    expect(page.locator("#stats")).to_contain_text("Collection default")


def test_keyboard_only_search(page: Page, site: Site) -> None:
    page.goto(site.url + "/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(6):  # past the skip link, the four pages and the key button
        page.keyboard.press("Tab")
    expect(page.get_by_label("Describe a picture")).to_be_focused()
    page.keyboard.type("a purple triangle")
    page.keyboard.press("Enter")
    expect(page.locator("#search-status")).to_contain_text("pictures for")
    expect(page.get_by_label("Describe a picture")).to_be_focused()  # still there after the search
    # The focus ring is visible (an outline, not the browser's nothing).
    outline = page.get_by_label("Describe a picture").evaluate(
        "e => getComputedStyle(e).outlineStyle"
    )
    assert outline == "solid"


def test_phone_width_has_no_horizontal_scroll(
    browser: Browser, site: Site, keyed_site: Site, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    image_id = next(iter(site.seeded))
    try:
        for i, route in enumerate([*PAGES, f"#/image/{image_id}"]):
            page.goto(f"{site.url}/{route}")
            page.wait_for_function("() => !document.querySelector('.status.busy')")
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{route}: {width} px wide"
            page.screenshot(path=artifacts / f"phone-{i}.png", full_page=True)
        # The key box, opened by a 401, fits as well.
        page.goto(keyed_site.url + "/#/stats")
        expect(page.get_by_label("API key", exact=True)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=artifacts / "phone-key.png", full_page=True)
    finally:
        context.close()
