"""Single actions in the browser: keyboard save in the editor, bulk actions on a dataset, the compare view."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TINY, TINY_B, confirm, screenshot, seed_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_ctrl_enter_in_the_editor_saves_the_example_without_leaving_the_page(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "keyboard save", 3)
    page.goto(f"/datasets/{dataset_id}")
    page.locator("#dataset-body a.example-link").first.click()
    expect(page.locator("#problems .check-result")).to_have_attribute("data-valid", "true")
    editor_url = page.url
    answer = page.locator(".message-row[data-role=assistant] textarea[name=msg_content]")
    answer.fill("Zero, saved from the keyboard.")
    answer.press("Control+Enter")
    expect(page.locator("#editor .flash")).to_contain_text("Saved (version 2)")
    assert page.url == editor_url
    screenshot(page, "11-editor-keyboard-save")

    page.reload()
    expect(page.locator(".message-row[data-role=assistant] textarea[name=msg_content]")).to_have_value(
        "Zero, saved from the keyboard."
    )
    # A second Ctrl+Enter from another field saves again, with the version the first save returned.
    page.locator("#editor-form input[name=note]").fill("checked by hand")
    page.locator("#editor-form input[name=note]").press("Control+Enter")
    expect(page.locator("#editor .flash")).to_contain_text("Saved (version 3)")


def test_selected_examples_get_a_new_split_and_then_are_deleted_in_bulk(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "bulk actions", 6)
    page.goto(f"/datasets/{dataset_id}")
    body = page.locator("#dataset-body")
    boxes = body.locator("input[name=ids]")
    expect(boxes).to_have_count(6)
    boxes.nth(0).check()
    boxes.nth(2).check()
    expect(body.locator(".bulk-count")).to_have_text("2 selected")
    body.get_by_label("New split").select_option("validation")
    body.get_by_role("button", name="Set split").click()
    expect(body.locator(".counts")).to_contain_text("2 validation")
    expect(body.locator(".counts")).to_contain_text("4 no split")
    rows = body.locator("table.examples-table tbody tr")
    for index in (0, 2):
        expect(rows.nth(index)).to_contain_text("validation")
    for index in (1, 3):
        expect(rows.nth(index)).not_to_contain_text("validation")
    screenshot(page, "12-bulk-split")

    # Select all on the page, then unselect two: the other four are deleted after the confirmation.
    body.locator(".select-all").check()
    expect(body.locator(".bulk-count")).to_have_text("6 selected")
    keep = [rows.nth(1).locator("a.example-link").inner_text(), rows.nth(4).locator("a.example-link").inner_text()]
    boxes.nth(1).uncheck()
    boxes.nth(4).uncheck()
    body.get_by_role("button", name="Delete").click()
    confirm(page, "Delete")
    expect(body.locator(".counts")).to_contain_text("2 examples")
    expect(rows).to_have_count(2)
    assert [rows.nth(i).locator("a.example-link").inner_text() for i in range(2)] == keep
    screenshot(page, "13-bulk-delete")


# Each column records when its reply changed; the replies overlap in time when both stream at once.
_WATCH_COLUMNS = """() => {
  window.tbSeen = {};
  new MutationObserver(records => {
    for (const r of records) {
      const list = r.target.closest && r.target.closest('.transcript');
      if (!list) continue;
      const column = list.dataset.column, now = performance.now();
      const seen = window.tbSeen[column] || (window.tbSeen[column] = {first: null, last: null, updates: 0});
      if (r.type === 'childList' && r.target.classList.contains('msg-text') && r.target.textContent) {
        seen.first = seen.first === null ? now : seen.first;
        seen.last = now;
        seen.updates += 1;
      }
    }
  }).observe(document.querySelector('.pg-columns'), {childList: true, subtree: true});
}"""


def test_the_compare_view_streams_two_models_side_by_side_at_the_same_time(page, e2e_server):
    # Both models are cold here: the server loads them concurrently, as a person opening compare would cause.
    page.goto(f"/playground/compare?model={TINY}&model={TINY_B}")
    expect(page.locator("h1")).to_have_text("Compare models")
    columns = page.locator(".pg-column")
    expect(columns).to_have_count(2)
    expect(page.locator(".pg-model").nth(0)).to_have_value(TINY)
    expect(page.locator(".pg-model").nth(1)).to_have_value(TINY_B)
    page.locator("#pg-max-tokens").fill("120")
    page.evaluate(_WATCH_COLUMNS)
    page.locator("#pg-input").fill("Tell me a joke about cats.")
    page.locator("#pg-input").press("Control+Enter")
    for column in range(2):
        expect(columns.nth(column).locator(".msg-user")).to_have_text(re.compile("Tell me a joke about cats."))
        expect(columns.nth(column).locator(".msg-assistant .msg-text")).not_to_be_empty()
    expect(page.locator(".msg-text.streaming")).to_have_count(0)
    expect(page.locator("#pg-send")).to_be_enabled()
    seen = page.evaluate("() => window.tbSeen")
    screenshot(page, "14-compare")
    first, second = seen["0"], seen["1"]
    assert first["updates"] > 1 and second["updates"] > 1, seen
    # Both replies were growing during one shared stretch of time: neither waited for the other to finish.
    assert first["first"] < second["last"] and second["first"] < first["last"], seen
    # The conversation was stored with both models, so the URL now reopens it.
    expect(page).to_have_url(re.compile(r"[?&]c="))
