"""The page's own confirmation dialog (never the browser's confirm()): Cancel and Escape keep the thing, Confirm does
it, and a message then says what was done. The page fixture fails a test on any native dialog."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import confirm, screenshot, seed_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_deleting_examples_asks_in_the_page_and_cancel_or_escape_keep_them(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "confirm examples", 4)
    page.goto(f"/datasets/{dataset_id}")
    body = page.locator("#dataset-body")
    rows = body.locator("table.examples-table tbody tr")
    body.locator("input[name=ids]").nth(0).check()
    delete = body.get_by_role("button", name="Delete")
    dialog = page.locator("dialog#confirm-dialog")

    delete.click()
    expect(dialog).to_be_visible()
    expect(dialog.locator("#confirm-title")).to_have_text("Delete the selected examples?")
    expect(dialog.locator("#confirm-detail")).to_have_text("This cannot be undone.")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    expect(dialog.get_by_role("button", name="Delete")).to_have_class("confirm-ok danger")
    screenshot(page, "confirm-1-dialog")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    delete.click()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(rows).to_have_count(4)

    delete.click()
    confirm(page, "Delete")
    expect(rows).to_have_count(3)
    expect(body.locator(".flash")).to_have_text("Deleted 1 example.")


def test_deleting_a_dataset_ends_with_a_message_on_the_list(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "confirm dataset", 3)
    page.goto(f"/datasets/{dataset_id}")
    page.get_by_role("link", name="Delete dataset…").click()
    page.get_by_role("button", name="Delete dataset").click()
    expect(page).to_have_url(f"{e2e_server.url}/datasets")
    expect(page.locator("#flash .flash")).to_have_text("Deleted “confirm dataset” and its 3 examples.×")
    # Said once: the message does not come back on the next page.
    page.reload()
    expect(page.locator("#flash .flash")).to_have_count(0)
    screenshot(page, "confirm-2-dataset-deleted")


def test_revoking_a_key_asks_first_and_says_what_was_revoked(page, e2e_server):
    page.goto("/settings")
    page.get_by_label("Name").fill("confirm me")
    page.get_by_role("button", name="Create key").click()
    keys = page.locator("#api-keys")
    row = keys.locator("tr", has_text="confirm me")
    expect(row).to_have_count(1)

    row.get_by_role("button", name="Revoke").click()
    dialog = page.locator("dialog#confirm-dialog")
    expect(dialog.locator("#confirm-title")).to_have_text("Revoke this key?")
    expect(dialog.locator("#confirm-detail")).to_have_text("Programs using it stop working.")
    screenshot(page, "confirm-3-revoke-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(1)

    row.get_by_role("button", name="Revoke").click()
    confirm(page, "Revoke")
    expect(row).to_have_count(0)
    expect(page.locator("#flash .flash")).to_contain_text("Revoked the API key “confirm me”")
    screenshot(page, "confirm-4-revoked")


def test_a_plain_form_with_data_confirm_asks_in_the_page_too(page, e2e_server):
    page.goto("/settings")
    page.get_by_label("Name").fill("plain form")
    page.get_by_role("button", name="Create key").click()
    row = page.locator("#api-keys tr", has_text="plain form")
    expect(row).to_have_count(1)
    form = row.locator("form[data-confirm]")
    # Submitted as a form (as without htmx): the page's submit handler asks first.
    form.evaluate("f => f.requestSubmit()")
    dialog = page.locator("dialog#confirm-dialog")
    expect(dialog.locator("#confirm-title")).to_have_text("Revoke this key?")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row).to_have_count(1)

    form.evaluate("f => f.requestSubmit()")
    with page.expect_navigation():
        confirm(page, "Revoke")
    expect(page.locator("#api-keys tr", has_text="plain form")).to_have_count(0)
    expect(page.locator("#flash .flash")).to_contain_text("Revoked the API key “plain form”")
