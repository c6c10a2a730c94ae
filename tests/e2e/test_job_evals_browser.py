"""In Chromium: attach an eval at launch, watch per-checkpoint scores appear on the job page, then chat with the
best checkpoint and make it the tuned model with one click each."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from tests.e2e.conftest import TINY, confirm, screenshot
from tests.e2e.job_form import fill_job_form, launch_job
from tests.support.builders import make_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_WAIT_MS = 180_000  # training two epochs and evaluating two checkpoints on 2 busy cores


def test_attach_an_eval_at_launch_and_watch_checkpoint_scores_appear(page, e2e_server):
    with Session(e2e_server.app.state.engine) as session:
        dataset_id = make_dataset(session, n_train=12, n_validation=4, name="held-out arithmetic").id

    page.goto(f"/jobs/new?dataset_id={dataset_id}")
    form = page.locator("#new-job")
    choice = form.locator("#eval-choice")
    # On by default: the dataset has validation examples.
    expect(choice).to_have_value("validation")
    expect(choice.locator("option[value=validation]")).to_have_text("make one from the validation examples (4)")
    # The seed last: its change event refreshes the estimate (and the eval section).
    fill_job_form(page, {"Base model": TINY, "Epochs": "2", "Batch size": "4", "Seed": "3"})
    expect(choice).to_have_value("validation")  # the refresh keeps the default for the same dataset
    expect(page.locator("#eval-hint")).to_contain_text("Two graders compare each answer")
    screenshot(page, "job-evals-1-form")
    launch_job(page)

    # The panel loads by itself and refreshes while the job runs: no reload from here on.
    page.evaluate("() => { window.tbSamePage = true; }")
    panel = page.locator("#job-evals")
    expect(panel.get_by_role("link", name=re.compile(r"^eval: held-out arithmetic eval"))).to_be_visible()
    scores = page.locator("#checkpoint-evals td.score .rate")
    expect(scores.first).to_be_visible(timeout=JOB_WAIT_MS)
    screenshot(page, "job-evals-2-first-score")
    expect(scores).to_have_count(2, timeout=JOB_WAIT_MS)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=JOB_WAIT_MS)
    expect(page.locator("#checkpoint-evals .run-status .badge")).to_have_text(["completed", "completed"])
    assert page.evaluate("() => window.tbSamePage === true")

    # The eval chart has one dot per checkpoint and grader line; the best checkpoint is marked on both charts.
    expect(page.locator("#eval-chart svg circle")).to_have_count(6)  # 2 checkpoints × (all + 2 graders)
    expect(page.locator("#eval-chart svg .marker")).to_have_count(1)
    expect(page.locator("#loss-chart svg .marker")).to_have_count(1)
    best_step = page.locator("#job-evals").get_attribute("data-best-step")
    assert best_step in ("3", "6"), best_step
    expect(page.locator(f"#ckpt-{best_step}.best")).to_be_visible()
    expect(panel.locator("#best-checkpoint")).to_contain_text(f"step {best_step}")
    # The panel stops asking for itself once everything has ended.
    expect(panel).not_to_have_attribute("hx-trigger", re.compile("every"))
    page.locator("#job-evals").scroll_into_view_if_needed()
    screenshot(page, "job-evals-3-scores")

    # One click (and the page's confirmation): the best checkpoint becomes the tuned model.
    page.get_by_role("button", name="Use the best checkpoint as the tuned model").click()
    confirm(page, "Use the best checkpoint as the tuned model")
    expect(panel.locator("#best-is-tuned")).to_contain_text("answers with this checkpoint")
    expect(page.locator("#event-log")).to_contain_text(f"The checkpoint at step {best_step} is now the tuned model")
    screenshot(page, "job-evals-4-promoted")

    # One click: chat with the best checkpoint, preselected in the playground.
    panel.get_by_role("link", name="Chat with the best checkpoint").click()
    expect(page.locator("h1")).to_have_text("Playground")
    expect(page.locator(".pg-model")).to_have_value(re.compile(rf"ckpt-step-{best_step}$"))
    page.locator("#pg-max-tokens").fill("6")
    page.locator("#pg-input").fill("What is 2 plus 2?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg-text.streaming")).to_have_count(0)
    expect(page.locator("#pg-send")).to_be_enabled()
    screenshot(page, "job-evals-5-chat-best")
