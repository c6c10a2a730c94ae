"""The editor and the import box in real Chromium: the JavaScript behaviour the CSP leaves to static files."""

from __future__ import annotations

import shutil

import pytest
from sqlmodel import Session

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example, get_example, list_examples
from tests.conftest import FIXTURES

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def page(live_server):
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM) if CHROMIUM else p.chromium.launch()
        except Exception as exc:  # no browser on this machine: skip rather than fail
            pytest.skip(f"Chromium is not available: {exc}")
        errors: list[str] = []
        tab = browser.new_page()
        # Script errors and failed requests of our own (the browser's favicon probe is not ours).
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on(
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None
            ),
        )
        tab.errors = errors
        yield tab
        browser.close()


def test_editor_inserts_a_message_and_saves_with_ctrl_enter(page, live_server, engine):
    with Session(engine) as session:
        dataset = create_dataset(session, "b")
        example = add_example(
            session,
            dataset.id,
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        )
    page.goto(f"{live_server.url}/examples/{example.id}")
    page.locator(".message-row").nth(1).locator("[data-action=insert]").click()
    assert page.locator("#editor-form .message-row").count() == 3
    new_row = page.locator("#editor-form .message-row").nth(2)
    assert new_row.locator("select[name=msg_role]").input_value() == "user"
    new_row.locator("textarea[name=msg_content]").fill("And one more thing?")
    page.locator("#problems .problems li", has_text="Message 3").wait_for()  # last message is not an assistant's
    page.keyboard.press("Control+Enter")
    page.locator("#editor .flash", has_text="Saved (version 2)").wait_for()
    with Session(engine) as session:
        saved = get_example(session, example.id)
    assert [m["content"] for m in saved.messages] == ["Hi", "Hello", "And one more thing?"]
    assert page.errors == []


def test_import_box_uploads_with_progress_and_refreshes_the_list(page, live_server, engine):
    with Session(engine) as session:
        dataset = create_dataset(session, "upload")
    page.goto(f"{live_server.url}/datasets/{dataset.id}")
    page.set_input_files("#import-zone input[type=file]", str(FIXTURES / "pirate_training_set.jsonl"))
    page.click("#import-zone button[type=submit]")
    page.locator("#import-result", has_text="Imported 10 examples.").wait_for()
    page.locator("#dataset-body .counts", has_text="10").wait_for()
    assert page.locator("#bulk-form input[name=ids]").count() == 10
    page.check("#bulk-form .select-all")
    assert page.locator("#bulk-form .bulk-count").inner_text() == "10 selected"
    with Session(engine) as session:
        assert list_examples(session, dataset.id).total == 10
    assert page.errors == []
