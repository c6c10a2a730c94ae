"""Issue #19's acceptance in Chromium, as one user's journey through the UI: compare two models in the playground,
prefer one answer into a new preference dataset, see the pair in that dataset, prefer more answers until a job can
train on them, launch a DPO job from the dataset, and watch its reward-margin chart fill in on the job page."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TINY, TINY_B, screenshot
from tests.e2e.job_form import fill_job_form, launch_job

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOB_WAIT_MS = 180_000  # the reference pass and a few DPO steps on 2 busy cores
DATASET = "Flow picks"
# Each column's latest answer as the playground holds it (the page shows it through its markdown renderer).
ANSWERS = """() => [0, 1].map(c => window.tbPlayground.state().messages
  .filter(m => m.role === "assistant" && (m.column || 0) === c).pop().content)"""
QUESTIONS = [f"What is {n} plus {n}?" for n in range(10)]  # 10 pairs: the fewest a job trains on


def ask(page, question: str) -> None:
    """Send one message to both models and wait until each column offers its answer."""
    page.locator("#pg-input").fill(question)
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".pg-column .msg-assistant .pg-prefer-button")).to_have_count(2)


def open_compare(page) -> None:
    """From the navigation: the playground, the first model, then side by side with the second; short replies."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    page.wait_for_url(re.compile(r"/playground$"))  # loaded: its scripts run
    page.get_by_label("Model", exact=True).select_option(TINY)
    page.get_by_role("link", name="Compare side by side").click()
    page.wait_for_url(re.compile(r"/playground/compare"))
    expect(page.get_by_label("Model 1", exact=True)).to_have_value(TINY)
    page.get_by_label("Model 2", exact=True).select_option(TINY_B)
    # The tiny random models answer only newlines when greedy: sampling makes two different, non-empty answers.
    page.locator("#pg-temperature").fill("1")
    page.locator("#pg-max-tokens").fill("8")


def prefer(page, column: int, dataset: str, new: bool = False) -> None:
    """Prefer `column`'s answer to the last message, into the preference dataset named `dataset` (made if `new`)."""
    page.locator(f'.pg-prefer-button[data-column="{column}"]').click()
    dialog = page.locator("dialog#pg-prefer")
    expect(dialog).to_be_visible()
    if new:
        dialog.get_by_label("Preference dataset").select_option("new")
        dialog.get_by_label("Name of the new dataset").fill(dataset)
        screenshot(page, "dpo-flow-2-prefer-dialog")
    else:
        dialog.get_by_label("Preference dataset").select_option(label=dataset)
        expect(dialog.get_by_label("Name of the new dataset")).to_be_hidden()
    dialog.get_by_role("button", name="Save the pair").click()
    expect(dialog).to_be_hidden()


def test_compare_prefer_see_the_pair_launch_dpo_and_watch_the_reward_margin(page, e2e_server):
    # The playground: one model, then side by side with a second.
    page.goto("/")
    open_compare(page)
    ask(page, QUESTIONS[0])
    screenshot(page, "dpo-flow-1-compare")

    # Prefer the first model's answer, into a new preference dataset.
    prefer(page, 0, DATASET, new=True)
    result = page.locator("#pg-prefer-result")
    expect(result).to_contain_text(f"Saved to {DATASET} (example 1)")
    expect(result.locator(".badge.valid")).to_have_text("valid")
    # The columns say which answer the pair preferred.
    expect(page.locator('.pg-prefer-button[data-column="0"]')).to_have_text("✓ Preferred")
    expect(page.locator('.pg-prefer-button[data-column="1"]')).to_have_text("Prefer this answer")
    preferred, rejected = page.evaluate(ANSWERS)
    screenshot(page, "dpo-flow-3-pair-saved")

    # The pair in its dataset: the question and both answers, in the list and in the pair's editor.
    result.get_by_role("link", name=DATASET).click()
    expect(page.get_by_role("heading", name=DATASET)).to_be_visible()
    expect(page.locator(".dataset-head .kind-preference")).to_have_text("preference (DPO)")
    row = page.locator(".example-link")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(QUESTIONS[0])
    expect(row.locator(".preview-answer").first).to_contain_text("✓ " + preferred.strip()[:40])
    expect(row.locator(".preview-rejected")).to_contain_text("✗ " + rejected.strip()[:40])
    screenshot(page, "dpo-flow-4-dataset")
    row.click()
    page.wait_for_url(re.compile(r"/examples/\d+$"))
    expect(page.locator("main")).to_contain_text(QUESTIONS[0])
    expect(page.get_by_label("Preferred answer", exact=True)).to_have_value(preferred)
    expect(page.get_by_label("Rejected answer", exact=True)).to_have_value(rejected)
    screenshot(page, "dpo-flow-5-pair")

    # Back in the playground: more questions, preferring one model's answer or the other's, until there are 10.
    open_compare(page)
    for n, question in enumerate(QUESTIONS[1:], start=2):
        ask(page, question)
        prefer(page, n % 2, DATASET)
        expect(result).to_contain_text(f"Saved to {DATASET} (example {n})")
    screenshot(page, "dpo-flow-6-more-pairs")

    # The dataset, then its "Fine-tune…" form: the method follows the dataset (DPO).
    result.get_by_role("link", name=DATASET).click()
    expect(page.locator("#dataset-body .counts")).to_contain_text("10 examples")
    expect(page.locator("#dataset-body .counts .badge.valid")).to_have_text("0 invalid")
    page.get_by_role("link", name="Fine-tune…").click()
    page.wait_for_url(re.compile(r"/jobs/new\?dataset_id=\d+$"))
    form = fill_job_form(
        page,
        {"Validation": "none", "Base model": TINY, "Epochs": "3", "Batch size": "4", "Beta": "0.2", "Seed": "3"},
    )
    expect(form.locator("#job-method-select")).to_have_value("dpo")
    expect(form.get_by_label("Beta")).to_have_value("0.2")
    screenshot(page, "dpo-flow-7-job-form")
    launch_job(page)

    # The job page: the Preference chart draws the reward margin live from the job's own stream.
    page.evaluate("() => { window.tbSamePage = true; }")
    chart = page.locator("#preference-chart")
    expect(chart.locator("svg path[data-series=train_reward_margin]")).to_be_visible(timeout=JOB_WAIT_MS)
    page.wait_for_function(  # a line: two steps' points at least
        """() => / L/.test(document.querySelector('#preference-chart path[data-series="train_reward_margin"]')
                             .getAttribute('d'))""",
        timeout=JOB_WAIT_MS,
    )
    expect(page.locator("#preference-latest")).to_contain_text("reward margin")
    screenshot(page, "dpo-flow-8-job-running")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=JOB_WAIT_MS)
    expect(page.locator("#jobs-list [aria-current=page] .badge")).to_have_text("succeeded")  # the list follows
    assert page.evaluate("() => window.tbSamePage === true")  # drawn from the stream, no reload
    # The reward margin's labels are round numbers, evenly apart, with one number of decimals.
    labels = chart.locator("svg text.tick[text-anchor=end]").all_text_contents()
    values = [float(label) for label in labels]
    assert len({round(b - a, 9) for a, b in pairwise(values)}) == 1 and values[1] > values[0], labels
    assert len({len(label.partition(".")[2]) for label in labels}) == 1, labels
    screenshot(page, "dpo-flow-9-job-succeeded")
