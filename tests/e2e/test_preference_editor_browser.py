"""In Chromium: a preference pair's editor — the conversation above, the preferred and rejected answers side by
side, the live check naming the pair's rules as one types, a save, and a delete through the page's own dialog."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.datasets.datasets import create_dataset
from app.datasets.examples import get_example, list_examples
from app.datasets.importer import import_jsonl
from app.tables.dataset import PREFERENCE
from tests.conftest import FIXTURES
from tests.e2e.conftest import confirm, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_preference_example_is_edited_saved_and_deleted(page, e2e_server):
    engine = e2e_server.app.state.engine
    with Session(engine) as session:
        dataset = create_dataset(session, "Sign-off pairs", kind=PREFERENCE)
        with (FIXTURES / "dpo_signoff.jsonl").open("rb") as f:
            import_jsonl(session, dataset.id, f, filename="dpo_signoff.jsonl")
        first, second = list_examples(session, dataset.id).items[:2]
        dataset_id, first_id, second_id = dataset.id, first.id, second.id

    page.goto("/datasets")
    expect(page.locator(f"#dataset-{dataset_id} .kind-preference")).to_have_text("preference (DPO)")
    page.get_by_label("Kind of dataset").select_option("preference")
    screenshot(page, "preference-dataset-list")
    page.goto(f"/datasets/{dataset_id}")
    expect(page.locator(".dataset-head .kind-preference")).to_have_text("preference (DPO)")
    page.goto(f"/examples/{first_id}")
    preferred = page.get_by_label("Preferred answer", exact=True)
    rejected = page.get_by_label("Rejected answer", exact=True)
    expect(preferred).to_have_value("The capital of France is Paris. Best wishes, Tuneboard")
    expect(rejected).to_have_value("paris")
    # Side by side: the two answers share a row.
    left, right = preferred.bounding_box(), rejected.bounding_box()
    assert left and right and abs(left["y"] - right["y"]) < 5 and right["x"] > left["x"] + left["width"]

    problems = page.locator("#problems")
    rejected.fill("")
    expect(problems).to_contain_text("preference_output_missing_content")
    rejected.fill("Paris, I suppose.")
    expect(problems).to_contain_text("No problems found")
    expect(problems).to_contain_text("Tokens:")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#editor .flash")).to_contain_text("Saved (version 2)")
    screenshot(page, "preference-editor")
    with Session(engine) as session:
        saved = get_example(session, first_id)
        assert saved.non_preferred_output == [{"role": "assistant", "content": "Paris, I suppose."}]

    page.goto(f"/examples/{second_id}")
    page.get_by_role("button", name="Delete", exact=True).click()
    confirm(page, "Delete")
    page.wait_for_url(f"**/datasets/{dataset_id}")
    expect(page.locator(".flash")).to_contain_text("Deleted example #2")
    with Session(engine) as session:
        assert list_examples(session, dataset_id).total == 5
