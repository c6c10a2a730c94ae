"""In Chromium: launch a DPO job from a preference dataset's form and watch its reward-margin chart fill in."""

from __future__ import annotations

import itertools
import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from tests.e2e.conftest import TINY, screenshot
from tests.e2e.job_form import fill_job_form, launch_job
from tests.integration.test_dpo_jobs import preference_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_WAIT_MS = 180_000  # the reference pass and a few DPO steps on 2 busy cores


def test_launch_a_dpo_job_and_watch_its_preference_chart(page, e2e_server):
    with Session(e2e_server.app.state.engine) as session:
        dataset_id = preference_dataset(session).id

    page.goto(f"/jobs/new?dataset_id={dataset_id}")
    form = page.locator("#new-job")
    expect(form.locator("#job-method-select")).to_have_value("dpo")
    fields = {"Base model": TINY, "Epochs": "3", "Batch size": "4", "Learning rate multiplier": "1"}
    fill_job_form(page, fields | {"Beta": "0.2", "Seed": "3"})
    expect(form.get_by_label("Beta")).to_have_value("0.2")  # the out-of-band refresh keeps what was typed
    screenshot(page, "dpo-1-form")
    launch_job(page)

    page.evaluate("() => { window.tbSamePage = true; }")
    chart = page.locator("#preference-chart")
    expect(chart.locator("svg path[data-series=train_reward_margin]")).to_be_visible(timeout=JOB_WAIT_MS)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=JOB_WAIT_MS)
    expect(chart.locator("svg path[data-series=train_reward_accuracy]")).to_have_count(1)
    assert page.evaluate("() => window.tbSamePage === true")  # drawn live from the stream, no reload
    y_axis = page.locator("#loss-chart svg text[data-axis=y]")  # DPO's loss is per pair, not nats per token
    assert y_axis.evaluate("node => node.firstChild.nodeValue") == "DPO loss per pair"
    expect(y_axis.locator("title")).to_have_text(re.compile(r"^DPO loss: −log σ\(β × reward margin\)"))
    # Both charts label whole steps, each at its own step's position, at one round interval.
    for chart_id in ("loss-chart", "preference-chart"):
        ticks = page.locator(f"#{chart_id} svg text.tick[text-anchor=middle]")
        steps = [int(t) for t in ticks.all_text_contents()]
        assert steps[0] == 1 and len({b - a for a, b in itertools.pairwise(steps)}) == 1, (chart_id, steps)
        xs = [float(x) for x in ticks.evaluate_all("nodes => nodes.map(n => n.getAttribute('x'))")]
        gaps = [b - a for a, b in itertools.pairwise(xs)]
        assert max(gaps) - min(gaps) < 0.01, (chart_id, xs)  # evenly placed: each label sits on its step
    # No per-example loss card for pairs: a DPO loss is a margin's, not an example's.
    expect(page.locator("#job-example-losses")).to_have_count(0)
    page.locator("#preference-heading").scroll_into_view_if_needed()
    screenshot(page, "dpo-2-job-page")
