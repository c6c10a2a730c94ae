"""Browser fixtures: one real server (with its embedded worker and the tiny model) and one headless Chromium.

Both live for this package only: starting them costs seconds, and the tests each make their own dataset, so they
do not step on one another. Not for the whole session: a live sync Playwright keeps an asyncio loop running in
the main thread, which breaks later tests that run their own loop (asyncio.run, another sync Playwright).
Every page a test opens is watched for JS errors and CSP violations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import LiveServer, free_port, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TINY = "tiny-llama"
TINY_B = "tiny-llama-b"
WAIT_MS = 20_000  # a page condition that takes longer than this on 2 busy cores is a bug, not slowness

# Chromium logs CSP violations to the console, but an event listener added before any page script also
# catches the ones a page's own code could swallow. Init scripts run outside the page's CSP.
_REPORT_CSP = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline code"));
});
"""


@pytest.fixture(scope="package")
def e2e_server(tmp_path_factory) -> Iterator[LiveServer]:
    """The real app on a free loopback port: temp data dir, embedded worker, the tiny model registered."""
    from app.engine.testing import build_tiny_model

    root = tmp_path_factory.mktemp("e2e")
    # Two different random models, so the compare view streams two distinct replies.
    models = {TINY: build_tiny_model(root / TINY), TINY_B: build_tiny_model(root / TINY_B, seed=1)}
    settings = make_settings(
        root / "data",
        embedded_worker=True,
        local_models=models,
        default_base_model=TINY,
        heartbeat_seconds=0.2,
        worker_poll_seconds=0.05,
    )
    upgrade(settings)
    app = create_app(settings)
    with LiveServer(app, free_port()) as server:
        server.app = app
        yield server


@pytest.fixture(scope="package")
def chromium():
    """Debian's Chromium, headless, driven by Playwright (never Playwright's own browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """JS errors and console errors (CSP violations among them) seen on each URL a page visited."""

    def __init__(self, page):
        self.found: list[str] = []
        self.page = page
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.found.append(f"{page.url}: page error: {e}"))
        page.on("response", self._response)

    def _console(self, message) -> None:
        # "Failed to load resource" also follows each deliberate 4xx (a refused save, the favicon nobody
        # ships); responses are judged in _response instead, where the URL is known.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.found.append(f"{self.page.url}: console: {message.text}")

    def _response(self, response) -> None:
        missing_asset = response.status == 404 and "/static/" in response.url
        if response.status >= 500 or missing_asset:
            self.found.append(f"{self.page.url}: HTTP {response.status} for {response.request.method} {response.url}")

    def native_dialog(self, dialog) -> None:
        """A browser-native dialog opened: record it, and dismiss it so the page goes on."""
        self.found.append(f"{self.page.url}: native {dialog.type} dialog: {dialog.message}")
        dialog.dismiss()

    def assert_none(self) -> None:
        """Fail with every problem seen so far."""
        assert not self.found, "the browser reported problems:\n" + "\n".join(self.found)


@pytest.fixture
def page(chromium, e2e_server):
    """A fresh browser tab (own cookies) on the server; fails the test if any page logged an error."""
    from playwright.sync_api import expect

    context = chromium.new_context(base_url=e2e_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    context.add_init_script(_REPORT_CSP)
    tab = context.new_page()
    problems = PageProblems(tab)
    # Confirmations are the page's own <dialog> (app.js): a native alert/confirm/prompt is a bug.
    tab.on("dialog", problems.native_dialog)
    yield tab
    context.close()
    problems.assert_none()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-output/screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def confirm(page, action: str) -> None:
    """Answer the page's confirmation dialog with its `action` button (e.g. "Delete")."""
    from playwright.sync_api import expect

    dialog = page.locator("dialog#confirm-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=action, exact=True).click()
    expect(dialog).to_be_hidden()


def seed_dataset(server, name: str, n_examples: int) -> int:
    """A dataset of n valid arithmetic examples written straight to the server's database; its id."""
    from sqlmodel import Session

    from tests.support.builders import make_dataset

    with Session(server.app.state.engine) as session:
        return make_dataset(session, n_train=n_examples, name=name).id
