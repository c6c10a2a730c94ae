"""In Chromium: launch a DPO job from a preference dataset's form and watch its reward-margin chart fill in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from tests.e2e.conftest import TINY, screenshot
from tests.integration.test_dpo_jobs import preference_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_WAIT_MS = 180_000  # the reference pass and a few DPO steps on 2 busy cores


def test_launch_a_dpo_job_and_watch_its_preference_chart(page, e2e_server):
    with Session(e2e_server.app.state.engine) as session:
        dataset_id = preference_dataset(session).id

    page.goto(f"/jobs/new?dataset_id={dataset_id}")
    form = page.locator("#new-job")
    expect(form.locator("#job-method-select")).to_have_value("dpo")
    form.get_by_label("Base model").fill(TINY)
    form.get_by_label("Epochs").fill("3")
    form.get_by_label("Batch size").fill("4")
    form.get_by_label("Learning rate multiplier").fill("1")
    form.get_by_label("Beta").fill("0.2")
    form.get_by_label("Seed").fill("3")
    expect(page.locator("#estimate-facts")).to_be_visible()
    expect(form.get_by_label("Beta")).to_have_value("0.2")  # the out-of-band refresh keeps what was typed
    screenshot(page, "dpo-1-form")
    warnings = page.locator("#job-estimate input[name=accept_warnings]")
    if warnings.count():
        warnings.check()
    page.get_by_role("button", name="Launch fine-tune").click()
    page.wait_for_url("**/jobs/ftjob-*")

    page.evaluate("() => { window.tbSamePage = true; }")
    chart = page.locator("#preference-chart")
    expect(chart.locator("svg path[data-series=train_reward_margin]")).to_be_visible(timeout=JOB_WAIT_MS)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=JOB_WAIT_MS)
    expect(chart.locator("svg path[data-series=train_reward_accuracy]")).to_have_count(1)
    assert page.evaluate("() => window.tbSamePage === true")  # drawn live from the stream, no reload
    y_axis = page.locator("#loss-chart svg text[data-axis=y]")  # DPO's loss is per pair, not nats per token
    assert y_axis.evaluate("node => node.firstChild.nodeValue") == "DPO loss per pair"
    expect(y_axis.locator("title")).to_have_text(re.compile(r"^DPO loss: −log σ\(β × reward margin\)"))
    page.locator("#preference-heading").scroll_into_view_if_needed()
    screenshot(page, "dpo-2-job-page")
