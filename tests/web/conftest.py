"""The web app in a real browser: Playwright drives Debian's ``chromium`` (never a browser
Playwright downloads) against real gateway processes on loopback ports, with the tiny
shapes model and Milvus Lite, seeded with generated pictures whose captions name their
colours and shapes. Screenshots go to ``test-artifacts/web/`` (printed at the end)."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Page, Playwright, expect, sync_playwright

from clipsearch.bench.loopback import GatewayProcess
from clipsearch.core.keys import Scope, make_entry, new_key
from clipsearch.demo.shapes import iter_samples
from tests.helpers import ROOT, SHAPES_MODEL

ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = Path(os.environ.get("CLIPSEARCH_TEST_CHROMIUM", "/usr/bin/chromium"))
# 2 cores shared with other work: waits are generous (a condition polled, not a sleep).
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)
SEED_N = 30  # more than one library page (24)
# Every thumbnail of the results decoded by the browser (a function: the CSP forbids eval).
THUMBNAILS_LOADED = (
    "() => [...document.querySelectorAll('#results img')]"
    ".every(i => i.complete && i.naturalWidth > 0)"
)


@dataclass
class Site:
    """A running gateway, its seeded pictures (id -> caption) and, if keyed, its key."""

    url: str
    seeded: dict[str, str]
    key: str | None = None

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key} if self.key else {}


def png(img: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")  # type: ignore[attr-defined]
    return buf.getvalue()


def upload(name: str, data: bytes, mime: str = "image/png") -> FilePayload:
    """A file for ``set_input_files``, as if picked from the disk."""
    return {"name": name, "mimeType": mime, "buffer": data}


def _seed(url: str, headers: dict[str, str]) -> dict[str, str]:
    samples = list(iter_samples(SEED_N, seed=2))
    files = [
        ("files", (f"shape{i:02d}.png", png(img), "image/png"))
        for i, (img, _) in enumerate(samples)
    ]
    data = {"captions": [caption for _, caption in samples]}
    r = httpx.post(f"{url}/v1/images", files=files, data=data, headers=headers, timeout=120)
    r.raise_for_status()
    items = r.json()["items"]
    assert all(it["status"] == "stored" for it in items), items
    return {it["id"]: caption for it, (_, caption) in zip(items, samples, strict=True)}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.iterdir()):
        terminalreporter.write_line(f"web app screenshots: {ARTIFACTS}")


def _start(tmp: Path, key: str | None) -> Iterator[Site]:
    env = {
        "CLIPSEARCH_DATA_DIR": str(tmp / "data"),
        "CLIPSEARCH_MODEL_PATH": str(SHAPES_MODEL),
        "CLIPSEARCH_INDEX_TYPE": "FLAT",
        "CLIPSEARCH_AUTO_CREATE_COLLECTIONS": "true",  # a second collection for the picker
    }
    if key:
        env["CLIPSEARCH_API_KEYS"] = make_entry(key, Scope.admin, "web").line()
    with (tmp / "gateway.log").open("wb") as log:
        gw = GatewayProcess(env, log)
        try:
            gw.start()
            site = Site(gw.url, {}, key)
            site.seeded = _seed(gw.url, site.headers())
            yield site
        finally:
            gw.stop()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One gateway for the whole browser session (tests change distinct seeded pictures)."""
    yield from _start(tmp_path_factory.mktemp("web-open"), None)


@pytest.fixture(scope="session")
def keyed_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from _start(tmp_path_factory.mktemp("web-keyed"), new_key())


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium as root")
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (own session storage) that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(TIMEOUT_MS)
    yield pg
    context.close()
    assert not errors, f"script errors on the page: {errors}"
