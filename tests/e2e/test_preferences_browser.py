"""Preference pairs in Chromium: compare two models, prefer one answer, find the pair in its dataset; make
rejected answers for a supervised dataset and open the result."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TINY, TINY_B, screenshot, seed_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # it drives Chromium like its neighbours: not in the quick suite

COMPARED = {
    "models": [TINY, TINY_B],
    "messages": [
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "2 plus 2 is 4.", "column": 0},
        {"role": "assistant", "content": "It is 5, I think.", "column": 1},
    ],
}


def test_a_streamed_turn_offers_to_prefer_each_answer(page, e2e_server):
    page.goto(f"/playground/compare?model={TINY}&model={TINY_B}")
    expect(page.locator(".pg-prefer-button")).to_have_count(0)
    page.locator("#pg-temperature").fill("0")
    page.locator("#pg-max-tokens").fill("2")
    page.locator("#pg-input").fill("Hello?")
    page.locator("#pg-input").press("Control+Enter")
    expect(page.locator(".pg-column .msg-assistant .pg-prefer-button")).to_have_count(2)


def test_prefer_an_answer_in_the_compare_view_and_see_the_pair_in_the_dataset(page, e2e_server):
    from sqlmodel import Session

    from app.playground.conversations import save_conversation

    with Session(e2e_server.app.state.engine) as session:
        conv_id = save_conversation(session, None, COMPARED).id
    page.goto(f"/playground/compare?c={conv_id}")
    buttons = page.locator(".pg-prefer-button")
    expect(buttons).to_have_count(2)
    buttons.nth(0).click()
    dialog = page.locator("dialog#pg-prefer")
    expect(dialog).to_be_visible()
    expect(page.locator("#pg-prefer-name")).to_have_text(f"{TINY}'s answer")
    dialog.get_by_label("Preference dataset").select_option("new")
    dialog.get_by_label("Name of the new dataset").fill("Browser picks")
    screenshot(page, "playground-prefer")
    dialog.get_by_role("button", name="Save the pair").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#flash")).to_contain_text("Saved to Browser picks (example 1)")
    result = page.locator("#pg-prefer-result")
    expect(result).to_contain_text("Saved to Browser picks (example 1)")
    # The dataset just made is the choice for the next pair: no new name is asked for then.
    expect(page.locator("#pg-prefer-dataset option:checked")).to_have_text("Browser picks")
    buttons.nth(1).click()
    expect(page.locator("#pg-prefer-name")).to_have_text(f"{TINY_B}'s answer")
    expect(dialog.get_by_label("Name of the new dataset")).to_be_hidden()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    result.get_by_role("link", name="Browser picks").click()
    expect(page.get_by_role("heading", name="Browser picks")).to_be_visible()
    expect(page.locator(".example-link")).to_have_count(1)
    expect(page.locator(".example-link").first).to_contain_text("What is 2 plus 2?")
    page.locator(".example-link").first.click()
    page.wait_for_url(re.compile(r"/examples/\d+$"))
    body = page.locator("main")
    expect(body).to_contain_text("What is 2 plus 2?")
    # The first model's answer (the one preferred) and the second's (rejected), in the pair editor's two boxes.
    expect(page.get_by_label("Preferred answer", exact=True)).to_have_value("2 plus 2 is 4.")
    expect(page.get_by_label("Rejected answer", exact=True)).to_have_value("It is 5, I think.")
    screenshot(page, "preference-pair-in-dataset")


def test_make_rejected_answers_for_a_supervised_dataset_and_open_the_pairs(page, e2e_server):
    dataset_id = seed_dataset(e2e_server, "rejected source", 3)
    page.goto(f"/datasets/{dataset_id}")
    page.get_by_role("link", name="Make rejected answers…").click()
    expect(page.locator("#rejected-usable")).to_have_text("3 examples can be used.")
    screenshot(page, "make-rejected-answers-form")
    page.get_by_label("Model", exact=True).select_option(TINY)
    page.get_by_label("Max tokens").fill("4")
    page.get_by_role("button", name="Make rejected answers").click()
    page.wait_for_url(re.compile(r"/rejected-answers/\w+$"))
    expect(page.locator("#rejected-status")).to_contain_text("Done: 3 pairs written.")
    screenshot(page, "make-rejected-answers")
    page.locator("#rejected-open").click()
    expect(page.get_by_role("heading", name=f"rejected source · rejected by {TINY}")).to_be_visible()
    expect(page.locator(".example-link")).to_have_count(3)
    expect(page.locator(".example-link").first).to_contain_text("What is 0 plus 0?")
    screenshot(page, "make-rejected-answers-pairs")


def test_a_blind_review_s_votes_become_preference_pairs(page, e2e_server):
    from sqlmodel import Session

    from app.evals import reviews
    from tests.evals.pages_support import make_eval, make_run

    with Session(e2e_server.app.state.engine, expire_on_commit=False) as session:
        # Its own eval name: the package's server is shared, and eval names are unique.
        ev = make_eval(session, "preference pairs from a review")
        base = make_run(session, ev.id, TINY, {0: "0", 1: "2", 2: "no idea"})
        tuned = make_run(session, ev.id, TINY_B, {0: "0", 1: "3", 2: "4"})
        review = reviews.create_review(session, base.id, tuned.id)
        reviews.cast_vote(session, review.id, 0, "a")
        reviews.cast_vote(session, review.id, 2, "b")
    page.goto(f"/reviews/{review.id}/results")
    pairs = page.locator("#review-pairs")
    pairs.locator("summary").click()
    expect(pairs).to_contain_text("2 votes picked a side")
    pairs.get_by_label("Preference dataset").select_option("new")
    pairs.get_by_label("Name of the new dataset").fill("Reviewed in the browser")
    screenshot(page, "review-preference-pairs")
    pairs.get_by_role("button", name="Save the pairs").click()
    expect(page.get_by_role("heading", name="Reviewed in the browser")).to_be_visible()
    expect(page.locator("#flash")).to_contain_text("Saved 2 preference pairs to Reviewed in the browser")
    expect(page.locator(".example-link")).to_have_count(2)
