"""The web app's library, picture page, ingest and stats pages in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from clipsearch.demo.shapes import iter_samples
from tests.web.conftest import Site, png, upload

pytestmark = pytest.mark.browser


def test_library_pages_through_a_collection(page: Page, site: Site, artifacts: Path) -> None:
    total = httpx.get(f"{site.url}/v1/images", params={"limit": 1}).json()["total"]
    assert total > 24  # more than one page
    page.goto(site.url + "/#/library")
    cards = page.locator("#library li.card")
    expect(page.locator("#lib-status")).to_have_text(f"24 of {total} pictures")
    expect(cards).to_have_count(24)
    page.screenshot(path=artifacts / "library.png", full_page=True)
    page.get_by_role("button", name="Load more").click()
    expect(cards).to_have_count(total)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    ids = cards.evaluate_all("els => els.map(e => e.dataset.id)")
    assert len(set(ids)) == total  # every picture once
    # A filter nothing matches says so; a card opens the picture's page.
    page.get_by_label("Filter (JSON)").fill('{"album": "nowhere"}')
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#lib-status")).to_have_text("No pictures match the filter.")
    page.go_back()
    cards.nth(2).locator("a.open").click()
    page.wait_for_url(re.compile(f"#/image/{ids[2]}"))
    expect(page.locator("h1")).to_have_text(f"Picture {ids[2][:12]}")


def test_edit_a_caption_and_find_it_by_the_new_words(
    page: Page, site: Site, artifacts: Path
) -> None:
    image_id = list(site.seeded)[3]
    page.goto(f"{site.url}/#/image/{image_id}")
    expect(page.locator("#captions li").first).to_have_text(site.seeded[image_id] + " (main)")
    expect(page.locator("#similar li.card").first).to_be_visible()  # similar pictures shown
    links = page.locator("#similar li.card a").evaluate_all("els => els.map(e => e.href)")
    assert links, "no similar pictures"
    assert not [link for link in links if image_id in link]  # the picture itself left out
    new = "a tiny zebra wearing a hat"
    page.get_by_label("Main caption").fill(new)
    page.get_by_label(re.compile("^Metadata")).fill('{"album": "zoo"}')
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#image-status")).to_have_text("Saved.")
    expect(page.locator("#captions li").first).to_have_text(new + " (main)")
    # Another caption: added, listed after the main one, then removed again.
    page.get_by_label("Another caption (optional)").fill("a second line")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#captions li")).to_have_count(2)
    expect(page.locator("#captions li").nth(1)).to_contain_text("a second line")
    page.get_by_role("button", name="Remove caption: a second line").click()
    expect(page.locator("#captions li")).to_have_count(1)
    page.screenshot(path=artifacts / "picture.png", full_page=True)
    page.get_by_role("link", name="Search for more like this →").click()
    expect(page.locator("#results li.card").first).to_have_attribute("data-id", image_id)
    stored = httpx.get(f"{site.url}/v1/images/{image_id}").json()
    assert stored["caption"] == new
    assert stored["metadata"] == {"album": "zoo"}
    # Found by the new words: a text search over captions, then by the new metadata.
    page.goto(site.url + "/#/search?target=texts&q=" + new.replace(" ", "+"))
    top = page.locator("#results li.card").first
    expect(top.locator(".caption")).to_have_text(new)
    expect(top.locator("a.open")).to_have_attribute("href", re.compile(image_id))
    page.goto(site.url + '/#/search?q=a+shape&filter={"album":"zoo"}')
    expect(page.locator("#results li.card")).to_have_count(1)
    expect(page.locator("#results li.card").first).to_have_attribute("data-id", image_id)


def test_bad_metadata_is_refused_before_sending(page: Page, site: Site) -> None:
    image_id = list(site.seeded)[4]
    page.goto(f"{site.url}/#/image/{image_id}")
    page.get_by_label(re.compile("^Metadata")).fill("[1, 2]")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#image-status")).to_contain_text("must be a JSON object")
    assert httpx.get(f"{site.url}/v1/images/{image_id}").json()["metadata"] == {}


def test_delete_asks_first(page: Page, site: Site) -> None:
    image_id = list(site.seeded)[5]
    page.goto(f"{site.url}/#/image/{image_id}")
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("button", name="Cancel").click()
    assert httpx.get(f"{site.url}/v1/images/{image_id}").status_code == 200
    page.get_by_role("button", name="Delete…").click()
    expect(page.get_by_role("button", name="Yes, delete")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#/library"))
    assert httpx.get(f"{site.url}/v1/images/{image_id}").status_code == 404
    site.seeded.pop(image_id)


def test_missing_picture_is_an_error(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/#/image/{'0' * 64}")
    expect(page.locator("#image-status")).to_have_class(re.compile("error"))
    expect(page.locator("#image-status")).to_contain_text("not_found")


def test_drop_a_picture_and_watch_its_job_finish(page: Page, site: Site, artifacts: Path) -> None:
    (img, caption), *_ = iter_samples(1, seed=7)
    page.goto(site.url + "/#/ingest")
    page.set_input_files(
        "#ingest-files",
        files=[upload("new.png", png(img)), upload("broken.png", b"not a picture")],
    )
    expect(page.locator("#ingest-picked")).to_have_text("2 picture(s) chosen")
    page.set_input_files(
        "#ingest-captions",
        files=[
            upload("captions.csv", f"image_path,caption\nnew.png,{caption}\n".encode(), "text/csv")
        ],
    )
    page.get_by_role("button", name="Start ingest").click()
    job = page.locator("#jobs li.job").first
    expect(job).to_have_attribute("data-status", "partial", timeout=60_000)
    progress = job.locator("progress")
    assert progress.evaluate("p => [p.value, p.max]") == [2, 2]
    expect(job).to_contain_text("stored 1")
    expect(job.locator(".failures li.error")).to_contain_text("broken.png")
    expect(job.get_by_role("button", name="Cancel")).to_be_hidden()  # nothing left to cancel
    page.screenshot(path=artifacts / "ingest.png", full_page=True)
    # After a reload the page lists the job again, finished, with its failed item.
    job_id = job.get_attribute("data-job")
    page.reload()
    again = page.locator(f'#jobs li.job[data-job="{job_id}"]')
    expect(again).to_have_attribute("data-status", "partial")
    expect(again.locator(".failures li.error")).to_contain_text("broken.png")
    # The new picture is searchable with its caption.
    hits = httpx.post(f"{site.url}/v1/search/text", json={"query": caption, "target": "texts"})
    assert hits.json()["hits"][0]["text"] == caption


def test_stats_show_counts_model_and_health(page: Page, site: Site, artifacts: Path) -> None:
    stats = httpx.get(f"{site.url}/v1/stats").json()
    page.goto(site.url + "/#/stats")
    expect(page.locator("#ready")).to_contain_text("Ready")
    body = page.locator("#stats")
    expect(body).to_contain_text(stats["encoder"]["fingerprint"])
    expect(body).to_contain_text("Collection default")
    expect(body.locator("table", has_text="Encoder")).to_contain_text("ok")
    page.screenshot(path=artifacts / "stats.png", full_page=True)


def test_pasted_urls_become_a_job_with_reasons(page: Page, site: Site) -> None:
    page.goto(site.url + "/#/ingest")
    # A loopback address: the gateway refuses to fetch it (no requests into its own network).
    page.get_by_label("Image URLs, one per line").fill("http://127.0.0.1:9/a.png\n")
    page.get_by_role("button", name="Start ingest").click()
    job = page.locator("#jobs li.job").first
    expect(job).to_have_attribute("data-status", "failed", timeout=60_000)
    expect(job.locator(".failures li.error")).to_contain_text("http://127.0.0.1:9/a.png")
    # Nothing chosen at all is refused in the page, before any request.
    page.get_by_role("button", name="Start ingest").click()
    expect(page.locator("#ingest-status")).to_have_text("Choose pictures or paste URLs first.")


def test_a_whole_folder_is_ingested(page: Page, site: Site, tmp_path: Path) -> None:
    folder = tmp_path / "holiday"
    (folder / "day2").mkdir(parents=True)
    for i, (img, _) in enumerate(iter_samples(2, seed=13)):
        (folder / ("day2" if i else "") / f"f{i}.png").write_bytes(png(img))
    (folder / "notes.txt").write_text("not a picture")
    page.goto(site.url + "/#/ingest")
    page.set_input_files("#ingest-folder", folder)
    expect(page.locator("#ingest-picked")).to_have_text("2 picture(s) chosen")  # the .txt left out
    page.get_by_role("button", name="Start ingest").click()
    job = page.locator("#jobs li.job").first
    expect(job).to_have_attribute("data-status", "done", timeout=60_000)
    expect(job).to_contain_text("stored 2")
