"""The Add a model page in Chromium: a download from the stand-in hub with live progress, a local directory, and
an error shown in words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import _REPORT_CSP, WAIT_MS, PageProblems, screenshot
from tests.support.fake_hub import FakeHub, HubServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPO = "tiny-org/tiny-llama"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """The tiny model, the stand-in hub's only repo."""
    from app.engine.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("add-model") / "tiny-llama")


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory, tiny_dir) -> Iterator[LiveServer]:
    """A real server whose Hugging Face endpoint is the stand-in hub."""
    fake = FakeHub()
    fake.add_repo(REPO, tiny_dir, extra={"README.md": b"---\nlicense: apache-2.0\n---\n# Tiny\n"})
    with HubServer(fake) as hub:
        settings = make_settings(tmp_path_factory.mktemp("add-model-data"), hf_endpoint=hub.url, hf_hub_offline=False)
        upgrade(settings)
        with LiveServer(create_app(settings), free_port()) as server:
            yield server


@pytest.fixture
def tab(chromium, hub_server):
    """A fresh tab on the server; fails the test if a page logged an error."""
    context = chromium.new_context(base_url=hub_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    context.add_init_script(_REPORT_CSP)
    page = context.new_page()
    problems = PageProblems(page)
    yield page
    context.close()
    problems.assert_none()


def test_a_hub_download_shows_its_progress_and_the_model_joins_the_list(tab):
    tab.goto("/models")
    tab.get_by_role("link", name="Add a model").click()
    expect(tab.get_by_role("heading", name="From the Hugging Face Hub")).to_be_visible()
    screenshot(tab, "40-add-model")
    hub = tab.locator("#hub form")
    hub.get_by_label("Repo id").fill(REPO)
    hub.get_by_role("button", name="Download").click()
    download = tab.locator("#download-tiny-llama")
    expect(download.locator(".badge")).to_have_text("done")
    expect(download).to_contain_text("Downloaded and verified")
    screenshot(tab, "41-add-model-downloaded")
    download.get_by_role("link", name="See it in the base models").click()
    row = tab.locator("#base-tiny-llama")
    expect(row.get_by_role("cell", name="llama", exact=True)).to_be_visible()  # the architecture, as model_type
    expect(row).to_contain_text("apache-2.0")
    expect(row).to_contain_text("RAM: yes")
    screenshot(tab, "42-base-models")


def test_a_directory_is_added_and_a_bad_path_is_refused_in_words(tab, tiny_dir, tmp_path):
    tab.goto("/models/add#directory")
    form = tab.locator("#directory form")
    form.get_by_label("Directory").fill(str(tmp_path))
    form.get_by_role("button", name="Add directory").click()
    expect(tab.locator("#flash")).to_contain_text("It has no config.json.")
    screenshot(tab, "43-add-model-refused")
    form.get_by_label("Directory").fill(str(tiny_dir))
    form.get_by_label("Name").fill("tiny-from-dir")
    form.get_by_role("button", name="Add directory").click()
    expect(tab.locator("#model-added")).to_contain_text("tiny-from-dir")
    expect(tab.locator("#base-tiny-from-dir")).to_contain_text("local directory")
