"""The report's data-quality section in Chromium (issue #21): near-duplicate groups, outliers on the histogram."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from tests.e2e.conftest import screenshot
from tests.integration.test_report import add_dataset
from tests.quality.test_quality_report import KEY, planted

pytestmark = pytest.mark.browser


def test_the_report_shows_near_duplicates_outliers_and_masked_secrets(page, e2e_server):
    from playwright.sync_api import expect

    records, splits = planted()
    records[9]["messages"][1]["content"] = " ".join(f"long{i}" for i in range(3000))  # far more tokens
    with Session(e2e_server.app.state.engine) as session:
        dataset_id = add_dataset(session, records, "quality-planted", splits=splits)
    page.goto(f"/datasets/{dataset_id}/report?split=all")
    expect(page.locator("#quality")).to_be_visible()
    clusters = page.get_by_test_id("near-duplicate-clusters")
    expect(clusters).to_contain_text("train and validation")
    expect(page.get_by_test_id("outliers")).to_contain_text("unusually long")
    expect(page.locator(".report-histogram .outlier-mark").first).to_be_attached()
    expect(page.locator("table.report-problems")).to_contain_text("contains_secret")
    screenshot(page, "report-data-quality")
    page.locator("table.report-problems a[href$='problem=contains_secret']").click()
    page.wait_for_url(f"**/datasets/{dataset_id}?problem=contains_secret")
    assert KEY not in page.content()
