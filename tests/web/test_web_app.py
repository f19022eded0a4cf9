"""The web app, driven like a person would: search by text and by picture, browse, edit,
delete, ingest with live progress, stats, the API key flow, and a 390 px phone screen."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from clipsearch.demo.shapes import COLOURS, SHAPES, iter_samples
from tests.web.conftest import THUMBNAILS_LOADED, Site, png, upload

pytestmark = pytest.mark.browser


def colour_and_shape(caption: str) -> tuple[str, str]:
    words = re.findall(r"[a-z]+", caption)
    return next(w for w in words if w in COLOURS), next(w for w in words if w in SHAPES)


def search(page: Page, site: Site, query: str) -> None:
    page.goto(site.url + "/")
    page.get_by_label("Describe a picture").fill(query)
    page.get_by_label("Describe a picture").press("Enter")
    expect(page.locator("#search-status")).to_contain_text("pictures for")


def test_text_search_shows_the_right_thumbnails(page: Page, site: Site, artifacts: Path) -> None:
    # The seeded pictures (seed 2) include one big purple triangle; the tiny model finds it.
    colour, shape = "purple", "triangle"
    assert any(colour_and_shape(c) == (colour, shape) for c in site.seeded.values())
    search(page, site, f"a {colour} {shape}")
    cards = page.locator("#results li.card")
    expect(cards.first).to_be_visible()
    captions = cards.locator(".caption").all_inner_texts()
    assert colour in captions[0], captions
    assert shape in captions[0], captions
    assert all(colour in c or shape in c for c in captions[:3]), captions
    # The thumbnails are real pictures the browser decoded.
    page.wait_for_function(THUMBNAILS_LOADED)
    page.screenshot(path=artifacts / "search.png", full_page=True)
    # The search is in the address bar: a reload shows the same hits.
    assert f"q=a+{colour}+{shape}" in page.url
    first_id = cards.first.get_attribute("data-id")
    page.reload()
    expect(page.locator("#results li.card").first).to_have_attribute("data-id", first_id or "")
    expect(page.get_by_label("Describe a picture")).to_have_value(f"a {colour} {shape}")


def test_similar_paging_and_back(page: Page, site: Site) -> None:
    search(page, site, "a blue square")
    first = page.locator("#results li.card").first
    first_id = first.get_attribute("data-id")
    first.get_by_role("button", name="Similar").focus()
    page.keyboard.press("Enter")
    # The answer's status, not "Searching for pictures like …" (seen to race under load).
    expect(page.locator("#search-status")).to_contain_text(
        "1\N{EN DASH}12 pictures for pictures like"
    )
    expect(page.locator("#view")).to_be_focused()  # the keyboard starts at the new results
    assert f"image_id={first_id}" in page.url
    ids = page.locator("#results li.card").evaluate_all("els => els.map(e => e.dataset.id)")
    assert ids[0] == first_id  # the stored vector finds its own picture first
    assert len(ids) == 12
    expect(page.locator("#results li.card .meta").first).to_have_text("score 1.000")
    page.get_by_role("button", name="Next →").click()
    expect(page.locator("#search-status")).to_contain_text("13\N{EN DASH}")
    page2 = page.locator("#results li.card").evaluate_all("els => els.map(e => e.dataset.id)")
    assert not set(page2) & set(ids)
    page.go_back()
    expect(page.locator("#search-status")).to_contain_text("1\N{EN DASH}12")
    page.go_back()
    expect(page.locator("#search-status")).to_contain_text("a blue square")


def drop_file(page: Page, selector: str, name: str, data: bytes) -> None:
    """A real drop event on ``selector`` carrying one file, as a drag from the desktop."""
    transfer = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: "image/png" }));
            return dt;
        }""",
        [name, base64.b64encode(data).decode()],
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_search_by_dropped_picture_and_image_to_text(page: Page, site: Site) -> None:
    img, caption = next(iter(iter_samples(1, seed=2)))  # the first seeded picture again
    page.goto(site.url + "/#/search")
    drop_file(page, ".drop", "dropped.png", png(img))
    expect(page.locator("#search-status")).to_contain_text("pictures for the picture dropped.png")
    expect(page.locator("#results li.card .meta").first).to_have_text("score 1.000")
    assert page.locator("#results li.card .caption").first.inner_text() == caption
    assert "upload=1" in page.url
    page.get_by_label("find texts (captions) instead of pictures").check()
    page.set_input_files("#query-image", files=[upload("q.png", png(img))])
    expect(page.locator("#search-status")).to_contain_text("texts for the picture q.png")
    assert page.locator("#results li.card .caption").first.inner_text() == caption


def test_errors_are_shown_as_errors(page: Page, site: Site) -> None:
    page.goto(site.url + "/#/search?q=a+red+star&top_k=5000")
    status = page.locator("#search-status")
    expect(status).to_have_class(re.compile("error"))
    expect(status).to_contain_text("top_k")  # the API's code and message
    page.goto(site.url + "/#/search")
    page.get_by_text("Options").click()
    page.get_by_label("Filter (JSON)").fill("{not json")
    page.get_by_label("Describe a picture").fill("a red star")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(status).to_contain_text("filter is not valid JSON")
    expect(status).to_have_attribute("role", "alert")


def test_collection_picker_and_old_links(page: Page, site: Site) -> None:
    samples = list(iter_samples(3, seed=11))
    files = [("files", (f"o{i}.png", png(img), "image/png")) for i, (img, _) in enumerate(samples)]
    r = httpx.post(
        f"{site.url}/v1/images",
        params={"collection": "other"},
        files=files,
        data={"captions": [c for _, c in samples]},
    )
    assert r.status_code == 200, r.text
    page.goto(site.url + "/#/search")
    page.get_by_text("Options").click()
    picker = page.get_by_label("Collection")
    expect(picker.locator("option[value=other]")).to_have_count(1)
    picker.select_option("other")
    page.get_by_label("Describe a picture").fill("a shape")
    page.keyboard.press("Enter")
    expect(page.locator("#results li.card")).to_have_count(3)  # only that collection's
    assert "collection=other" in page.url
    captions = set(page.locator("#results li.card .caption").all_inner_texts())
    assert captions == {c for _, c in samples}
    # A link of the old page (/?q=...&collection=...) opens the same search in the app.
    page.goto(site.url + "/?q=a+shape&collection=other")
    expect(page.locator("#results li.card")).to_have_count(3)
    assert "#/search?q=a+shape&collection=other" in page.url
