"""Browser fixtures: one headless Debian chromium per test session, driven by Playwright.

Every page opened through ``open_page`` is watched: a console error, an uncaught exception or a
request that leaves the machine (anything but the page's own file:// URL, blob: and data:) fails
the test. ``TALON_UPDATE_SCREENSHOTS=1`` makes ``screenshot()`` write docs/img/ as well.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("TALON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
LOCAL_SCHEMES = ("file:", "blob:", "data:")


@pytest.fixture(scope="session")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    with playwright_api.sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class WatchedPage:
    """A Playwright page plus what it logged and requested."""

    def __init__(self, page, allowed_prefixes=()):
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.allowed = LOCAL_SCHEMES + tuple(allowed_prefixes)
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def goto_graph(self, path: Path, timeout: float = 60_000) -> None:
        self.page.goto(Path(path).resolve().as_uri())
        self.page.wait_for_selector("body[data-layout=ready]", timeout=timeout)

    def wait_ready(self, timeout: float = 60_000) -> None:
        self.page.wait_for_selector("body[data-layout=ready]", timeout=timeout)

    def external_requests(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.allowed)]

    def screenshot(self, name: str, tmp_path: Path, full_page: bool = False) -> Path:
        out = tmp_path / name
        self.page.screenshot(path=str(out), full_page=full_page)
        if os.environ.get("TALON_UPDATE_SCREENSHOTS"):
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, DOCS_IMG / name)
        return out


@pytest.fixture
def watched(browser):
    """A fresh page (1100×700) that fails the test on console errors or network requests."""
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    page = WatchedPage(context.new_page())
    yield page
    context.close()
    assert page.errors == [], f"the page logged errors: {page.errors}"
    assert page.external_requests() == [], f"the page made network requests: {page.external_requests()}"
