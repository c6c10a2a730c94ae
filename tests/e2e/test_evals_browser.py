"""Evals in the browser: make an eval over a dataset on the page, compare two finished runs, review five items
blind (clicks and the 1/2/3 keys), and read the win rate the results page shows."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlmodel import Session, select

from app.evals.reviews import review_results
from app.evals.stats import win_rate
from app.tables import Eval, PairwiseReview
from tests.e2e.conftest import screenshot, seed_dataset
from tests.evals.pages_support import make_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_compare_two_runs_and_review_five_items_blind(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "eval arithmetic", 8)
    page.goto("/evals")
    page.get_by_role("link", name="New eval").click()
    page.locator("input[name=name]").fill("Arithmetic eval")
    page.locator("select[name=dataset_id]").select_option(str(dataset_id))
    # A second grader, added on the page and caught by the live check before it is fixed.
    page.locator("#new-grader-type").select_option("regex_check")
    page.get_by_role("button", name="Add", exact=True).click()
    regex = page.locator("fieldset.grader[data-grader-index='1']")
    expect(regex).to_be_visible()
    regex.locator("input[name=g1_pattern]").fill("[0-9")
    expect(page.locator("#grader-check")).to_contain_text("Grader 2")
    expect(page.locator("#grader-check li.error")).to_have_count(1)
    screenshot(page, "evals-01-new-eval")
    regex.locator("input[name=g1_pattern]").fill("^[0-9]+$")
    expect(page.locator("#grader-check li.error")).to_have_count(0)
    page.get_by_role("button", name="Create eval").click()
    expect(page).to_have_url(re.compile(r"/evals/eval_[0-9a-f]+$"))
    expect(page.locator("h1")).to_have_text("Arithmetic eval")
    expect(page.locator("main")).to_contain_text("8 items")

    engine = e2e_server.app.state.engine
    with Session(engine, expire_on_commit=False) as session:
        row = session.exec(select(Eval).where(Eval.name == "Arithmetic eval")).one()
        assert [c["type"] for c in row.testing_criteria] == ["string_check", "regex_check"]
        # Two finished runs: the base model gets two sums right, the tuned one four (and misses one the base had).
        names = tuple(c["name"] for c in row.testing_criteria)
        base_answers = {i: str(2 * i) if i < 2 else "no idea" for i in range(5)}
        tuned_answers = {i: str(2 * i) if 0 < i < 5 else "dunno" for i in range(5)}
        base = make_run(session, row.id, "tiny-llama", base_answers, graders=names)
        tuned = make_run(session, row.id, "tiny-llama-b", tuned_answers, graders=names)
    page.reload()
    runs = page.locator("#eval-runs")
    expect(runs.locator("tbody tr")).to_have_count(2)
    compare = runs.get_by_role("button", name="Compare")
    expect(compare).to_be_disabled()
    runs.locator(f"input[value='{base.id}']").check()
    runs.locator(f"input[value='{tuned.id}']").check()
    expect(compare).to_be_enabled()
    screenshot(page, "evals-02-eval-page")
    compare.click()

    expect(page.locator("h1")).to_have_text("Compare runs")
    rates = page.locator("table.compare-rates tbody tr").first
    expect(rates).to_contain_text("40%")  # A: 2 of 5
    expect(rates).to_contain_text("80%")  # B: 4 of 5
    expect(rates).to_contain_text("+40 pts")
    changed = page.locator("article.changed-item")
    expect(changed).to_have_count(4)  # items 0 (worse), 2, 3, 4 (better)
    expect(page.locator("#item-0")).to_contain_text("worse in B")
    expect(page.locator("#item-0 .answer.side-a .output")).to_have_text("0")
    expect(page.locator("#item-0 .answer.side-b .output")).to_have_text("dunno")
    screenshot(page, "evals-03-compare")

    page.get_by_role("button", name="Start a blind A/B review").click()
    expect(page).to_have_url(re.compile(r"/reviews/review_[0-9a-f]+$"))
    item = page.locator("#review-item")
    expect(item.locator("#review-progress")).to_have_text("1 of 5")
    main = page.locator("main").inner_text()
    assert "tiny-llama" not in main and base.id not in main and tuned.id not in main
    screenshot(page, "evals-04-review")
    # Five votes: the better answer (a right sum) when there is one, else a tie; by click and by key.
    for n in range(5):
        expect(item.locator("#review-progress")).to_have_text(f"{n + 1} of 5")
        left, right = item.locator("#answer-left").inner_text(), item.locator("#answer-right").inner_text()
        good_left, good_right = left.isdigit(), right.isdigit()
        side = "1" if good_left and not good_right else "3" if good_right and not good_left else "2"
        if n % 2:
            page.keyboard.press(side)
        else:
            item.locator(f"[data-vote-key='{side}']").click()
        if n < 4:
            expect(item.locator("#review-progress")).to_have_text(f"{n + 2} of 5")
    expect(page).to_have_url(re.compile(r"/reviews/review_[0-9a-f]+/results$"))

    with Session(engine) as session:
        review = session.exec(select(PairwiseReview)).one()
        result = review_results(session, review.id)
    # A alone right on 0, B alone right on 2, 3, 4, both right on 1 (a tie).
    assert (result.wins, result.losses, result.ties) == (1, 3, 1)
    expected = win_rate(1, 3, 1)
    verdict = page.locator("#verdict")
    expect(verdict.locator("#win-rate")).to_have_text(f"{100 * expected.value:.0f}%")
    expect(verdict).to_contain_text(f"{100 * expected.low:.0f}%–{100 * expected.high:.0f}%")
    expect(verdict.locator("#wins")).to_have_text("1")
    expect(verdict.locator("#losses")).to_have_text("3")
    expect(verdict.locator("#ties")).to_have_text("1")
    expect(verdict).to_contain_text("No clear winner")  # five votes leave the interval across 50%
    expect(page.locator("main")).to_contain_text("tiny-llama-b")  # names revealed here only
    screenshot(page, "evals-05-review-results")

    page.goto(f"/evals/{row.id}/runs/{base.id}")
    expect(page.locator("#run-status")).to_have_text("completed")
    page.get_by_role("link", name="Failed (3)").click()
    expect(page.locator("table.items-table tbody tr")).to_have_count(3)
    screenshot(page, "evals-06-run")
    page.goto("/evals")
    expect(page.locator("table.evals-table")).to_contain_text("Arithmetic eval")
    screenshot(page, "evals-07-list")
