"""Bulk fixes in Chromium: review a near-duplicate cluster and keep one (then undo it from the history), and mask
personal data in one example from the editor and in bulk from the Fix panel's preview."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example
from tests.e2e.conftest import confirm, screenshot
from tests.integration.test_fixes import ANSWER, QUESTION, chat

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_review_a_near_duplicate_cluster_keep_one_and_undo_it(page, e2e_server):
    with Session(e2e_server.app.state.engine) as session:
        dataset = create_dataset(session, "near-duplicate review")
        ids = [
            add_example(session, dataset.id, chat(QUESTION, ANSWER), split="train").id,
            add_example(session, dataset.id, chat(QUESTION.lower(), ANSWER + "!"), split="validation").id,
            add_example(
                session, dataset.id, chat(QUESTION + "?", ANSWER.replace("right", "straight")), split="train"
            ).id,
        ]
        add_example(session, dataset.id, chat("How many legs does a spider have?", "Eight legs, always eight."))
        dataset_id = dataset.id

    page.goto(f"/datasets/{dataset_id}")
    panel = page.locator("#fix-panel")
    expect(panel.locator("[data-fix=near_duplicates]")).to_contain_text("1 cluster · 2 to delete")
    panel.get_by_role("link", name="Review clusters").click()
    cluster = page.locator(".cluster")
    expect(cluster).to_have_count(1)
    expect(cluster.locator(".cluster-example")).to_have_count(3)
    expect(cluster).to_contain_text("in train and validation")
    screenshot(page, "near-duplicate-review")

    cluster.locator(f"[data-example='{ids[1]}']").get_by_role("button", name="Keep this one").click()
    expect(page.locator("#flash .flash")).to_contain_text(
        f"Kept example {ids[1]} of a near-duplicate cluster, deleting 2 others."
    )
    expect(page.locator("#no-clusters")).to_be_visible()

    page.goto(f"/datasets/{dataset_id}/revisions")
    expect(page.locator("#revisions tbody tr")).to_have_count(1)
    screenshot(page, "revision-history")
    page.locator("#revisions").get_by_role("button", name="Undo").click()
    confirm(page, "Undo")
    expect(page.locator("#flash .flash")).to_contain_text("restored 2 examples.")
    expect(page.locator("#revisions .badge")).to_have_text("undone")
    page.goto(f"/datasets/{dataset_id}")
    expect(page.locator("table.examples-table tbody tr")).to_have_count(4)


def test_mask_personal_data_in_one_example_then_in_bulk(page, e2e_server):
    with Session(e2e_server.app.state.engine) as session:
        dataset = create_dataset(session, "mask personal data")
        first = add_example(session, dataset.id, chat("Where do I write?", "Write to jane.doe@acmecorp.io today."))
        for n in range(2):
            add_example(session, dataset.id, chat(f"Call me on +44 20 7946 095{n}", f"Noted, I will call. ({n})"))
        add_example(session, dataset.id, chat("Hi", "Hello."))
        dataset_id, first_id = dataset.id, first.id

    page.goto(f"/examples/{first_id}")
    note = page.locator("#sensitive-note")
    expect(note).to_contain_text("an e-mail address")
    expect(note).not_to_contain_text("jane.doe@acmecorp.io")
    # The editor's live check runs on load: an htmx answer still on its way when the page is left would take the
    # next page's flash message (app.js reads it after every htmx request), so leave only when nothing is pending.
    page.wait_for_load_state("networkidle")
    note.get_by_role("button", name="Mask in this example").click()
    expect(page.locator("#flash .flash")).to_contain_text("Masked personal data and secrets in 1 example.")
    expect(page.locator("#sensitive-note")).to_have_count(0)

    page.goto(f"/datasets/{dataset_id}")
    row = page.locator("#fix-panel [data-fix=mask_pii]")
    expect(row).to_contain_text("2 of 4 examples")
    screenshot(page, "fix-panel")
    row.get_by_role("link", name="Preview…").click()
    expect(page.locator("#fix-count")).to_contain_text("This changes 2 of 4 examples.")
    expect(page.locator(".diff-after").first).to_contain_text("<PHONE>")
    expect(page.locator("main")).not_to_contain_text("7946 0950")
    screenshot(page, "mask-pii")
    page.get_by_role("button", name="Apply to 2 examples").click()
    expect(page).to_have_url(f"{e2e_server.url}/datasets/{dataset_id}")
    expect(page.locator("#flash .flash")).to_contain_text("Masked personal data and secrets in 2 examples.")
    expect(page.locator("#revisions tbody tr")).to_have_count(2)
    expect(page.locator("#fix-panel")).not_to_contain_text("Mask personal data")
