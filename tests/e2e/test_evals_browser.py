"""Evals in the browser: make an eval over a dataset on the page, run it on two models through the worker's eval lane
(watching the live run page), compare the runs, review five items blind (clicks and the 1/2/3 keys), and read the
win rate the results page shows."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from app.evals import reviews
from app.evals.compare import compare_runs, output_text
from app.evals.stats import win_rate
from app.tables import PairwiseVote
from tests.e2e.conftest import TINY, TINY_B, screenshot, seed_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _run_on(page, model: str) -> str:
    """Start a run of the model from the eval's page (greedy would make the two tiny models answer alike: they sample,
    seeded), watch it complete on its live page; its id."""
    form = page.locator("#run-form")
    form.locator("select[name=model]").select_option(model)
    form.locator("input[name=temperature]").fill("1")
    form.locator("input[name=seed]").fill("7")
    form.locator("input[name=max_completion_tokens]").fill("8")
    form.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/runs/evalrun_[0-9a-f]+$"))
    expect(page.locator("#run-status")).to_have_text("completed")  # the page refreshes itself while it runs
    expect(page.locator("#run-progress-text")).to_have_text("5 of 5 items done")
    return page.url.rsplit("/", 1)[1]


def test_compare_two_runs_and_review_five_items_blind(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "eval arithmetic", 5)
    page.goto("/evals")
    page.get_by_role("link", name="New eval").click()
    page.locator("input[name=name]").fill("Arithmetic eval")
    page.locator("select[name=dataset_id]").select_option(str(dataset_id))
    # A second grader, added on the page and caught by the live check before it is fixed.
    page.locator("#new-grader-type").select_option("regex_check")
    page.get_by_role("button", name="Add", exact=True).click()
    regex = page.locator("fieldset.grader[data-grader-index='1']")
    expect(regex).to_be_visible()
    regex.locator("input[name=g1_pattern]").fill("[A-Z")
    expect(page.locator("#grader-check")).to_contain_text("Grader 2")
    expect(page.locator("#grader-check li.error")).to_have_count(1)
    expect(regex.locator("input[name=g1_pattern]")).to_have_class(re.compile("has-error"))
    screenshot(page, "evals-01-new-eval")
    regex.locator("input[name=g1_pattern]").fill("U")
    expect(page.locator("#grader-check li.error")).to_have_count(0)
    expect(regex.locator("input[name=g1_pattern]")).not_to_have_class(re.compile("has-error"))
    page.get_by_role("button", name="Create eval").click()
    expect(page).to_have_url(re.compile(r"/evals/eval_[0-9a-f]+$"))
    eval_url = page.url
    expect(page.locator("h1")).to_have_text("Arithmetic eval")
    expect(page.locator("main")).to_contain_text("5 items")

    # Two runs through the worker's eval lane, started and watched on the pages.
    base_id = _run_on(page, TINY)
    page.goto(eval_url)
    tuned_id = _run_on(page, TINY_B)
    screenshot(page, "evals-06-run")
    page.goto(eval_url)
    runs = page.locator("#eval-runs")
    expect(runs.locator("tbody tr")).to_have_count(2)
    compare = runs.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    runs.locator(f"input[value='{tuned_id}']").check()
    runs.locator(f"input[value='{base_id}']").check()
    expect(compare).to_be_enabled()
    screenshot(page, "evals-02-eval-page")
    compare.click()

    engine = e2e_server.app.state.engine
    with Session(engine) as session:
        expected = compare_runs(session, base_id, tuned_id)  # the older run is A
    expect(page.locator("h1")).to_have_text("Compare runs")
    expect(page.locator(".compare-heads .side-a")).to_contain_text(TINY)
    overall = expected.rates[0]
    row = page.locator("table.compare-rates tbody tr").first
    expect(row).to_contain_text(f"{overall.a.passed}/5")
    expect(row).to_contain_text(f"{overall.b.passed}/5")
    expect(page.locator("article.changed-item")).to_have_count(len(expected.changed))
    for changed in expected.changed:
        card = page.locator(f"#item-{changed.item_index}")
        expect(card.locator(".answer.side-a .output")).to_have_text(output_text(changed.a.sample))
        expect(card.locator(".answer.side-b .output")).to_have_text(output_text(changed.b.sample))
    screenshot(page, "evals-03-compare")

    page.get_by_role("button", name="Start a blind A/B review").click()
    expect(page).to_have_url(re.compile(r"/reviews/review_[0-9a-f]+$"))
    review_id = page.url.rsplit("/", 1)[1]
    item = page.locator("#review-item")
    expect(item.locator("#review-progress")).to_have_text("1 of 5")
    shown = page.locator("main").inner_text()
    assert TINY not in shown and base_id not in shown and tuned_id not in shown
    screenshot(page, "evals-04-review")
    # Five votes, by click and by key: B's answer three times, A's once, a tie once, wherever each was shown.
    wanted = ["b", "a", "tie", "b", "b"]
    with Session(engine) as session:
        order = {
            v.item_index: v.a_first
            for v in session.exec(select(PairwiseVote).where(PairwiseVote.review_id == review_id))
        }
    for n, choice in enumerate(wanted):
        expect(item.locator("#review-progress")).to_have_text(f"{n + 1} of 5")
        a_first = order[int(item.locator("input[name=item_index]").get_attribute("value"))]
        key = "2" if choice == "tie" else "1" if (choice == "a") == a_first else "3"
        if n % 2:
            page.keyboard.press(key)
        else:
            item.locator(f"[data-vote-key='{key}']").click()
        if n < 4:
            expect(item.locator("#review-progress")).to_have_text(f"{n + 2} of 5")
    expect(page).to_have_url(re.compile(r"/reviews/review_[0-9a-f]+/results$"))

    rate = win_rate(1, 3, 1)
    verdict = page.locator("#verdict")
    expect(verdict.locator("#win-rate")).to_have_text(f"{100 * rate.value:.0f}%")
    expect(verdict).to_contain_text(f"{100 * rate.low:.0f}%–{100 * rate.high:.0f}%")
    expect(verdict.locator("#wins")).to_have_text("1")
    expect(verdict.locator("#losses")).to_have_text("3")
    expect(verdict.locator("#ties")).to_have_text("1")
    expect(verdict).to_contain_text("No clear winner")  # five votes leave the interval across 50%
    expect(page.locator(".compare-heads")).to_contain_text(TINY_B)  # names revealed here only
    screenshot(page, "evals-05-review-results")
    with Session(engine) as session:
        assert reviews.review_results(session, review_id).rate == pytest.approx(rate.value)

    page.goto("/evals")
    expect(page.locator("table.evals-table")).to_contain_text("Arithmetic eval")
    screenshot(page, "evals-07-list")
