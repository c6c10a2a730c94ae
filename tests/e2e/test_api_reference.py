"""The API reference at /docs works in a real browser: vendored Swagger UI, the bearer key, a live request."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import API_KEY
from tests.e2e.conftest import screenshot, seed_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def run_list_datasets(page):
    """Expand GET /api/datasets, press "Try it out" and "Execute"; the live response table."""
    operation = page.locator(".opblock-get:has(.opblock-summary-path[data-path='/api/datasets'])").first
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    return operation.locator(".live-responses-table")


def test_the_api_reference_authorizes_with_the_key_and_runs_a_request(page, e2e_server):
    seed_dataset(e2e_server, "listed in the reference", 2)
    page.goto("/docs")
    page.locator("button.authorize").first.click()
    page.locator(".modal-ux input").first.fill(API_KEY)
    page.locator(".modal-ux button.modal-btn.auth").first.click()
    page.locator(".modal-ux button.btn-done").first.click()

    live = run_list_datasets(page)
    expect(live.locator("tbody .response-col_status").first).to_contain_text("200")
    expect(live.locator("tbody .response-col_description")).to_contain_text("listed in the reference")
    screenshot(page, "12-api-reference")


def test_the_api_reference_without_the_key_shows_the_401_and_its_plain_message(page, e2e_server):
    page.goto("/docs")
    live = run_list_datasets(page)
    expect(live.locator("tbody .response-col_status").first).to_contain_text("401")
    expect(live.locator("tbody .response-col_description")).to_contain_text("You didn't provide an API key")
