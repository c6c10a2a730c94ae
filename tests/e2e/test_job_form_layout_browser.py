"""In Chromium: the new fine-tune form's layout (issue #17): confirmation boxes beside their words, a refusal that
covers no field, the paid-provider notice as one block, and a provider switch that swaps the model and shows $."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.datasets.validation import apply_check
from app.tables import Dataset, Example
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.browser]


def _dataset_without_system_messages(server, n: int = 12) -> int:
    """A valid dataset whose examples lack a system message: a warning to accept before launching."""
    with Session(server.app.state.engine) as session:
        dataset = Dataset(name="no system prompt")
        session.add(dataset)
        session.commit()
        for i in range(n):
            example = Example(
                dataset_id=dataset.id,
                position=i,
                messages=[
                    {"role": "user", "content": f"What is {i} times 3?"},
                    {"role": "assistant", "content": f"{i * 3}"},
                ],
            )
            apply_check(example)
            session.add(example)
        session.commit()
        assert dataset.id is not None
        return dataset.id


def _beside(box, words) -> None:
    """The checkbox sits on the same line as its words, to their left."""
    b, w = box.bounding_box(), words.bounding_box()
    assert b is not None and w is not None
    assert b["x"] + b["width"] <= w["x"] + 1, (b, w)
    box_middle, words_middle = b["y"] + b["height"] / 2, w["y"] + w["height"] / 2
    assert abs(box_middle - words_middle) < max(b["height"], 12), (b, w)


def _overlap(a, b) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_job_form_boxes_sit_beside_their_words_and_a_refusal_covers_no_field(page, e2e_server):
    dataset_id = _dataset_without_system_messages(e2e_server)
    page.goto(f"/jobs/new?dataset_id={dataset_id}")
    facts = page.locator("#estimate-facts")
    expect(facts.locator("dt")).to_contain_text(["Base model", "Epochs", "Steps", "Tokens trained"])
    expect(facts).not_to_contain_text("n epochs")
    expect(facts).not_to_contain_text("billing")
    expect(facts).not_to_contain_text("Cost")
    accept = page.locator("#accept-warnings-label")
    _beside(accept.locator("input"), accept.locator("span"))

    # Launch without accepting: the refusal appears above the form and hides none of its labels.
    page.get_by_role("button", name="Launch fine-tune").click()
    flash = page.locator("#flash .flash")
    expect(flash).to_contain_text("Accept these warnings")
    screenshot(page, "job-form-1-refused-without-accepting")
    banner = flash.bounding_box()
    for field in ("dataset_id", "validation", "provider"):
        label = page.locator("#new-job label", has=page.locator(f"select[name={field}]"))
        box = label.bounding_box()  # the label's words and its select
        assert banner is not None and box is not None
        assert not _overlap(banner, box), (field, banner, box)


def test_switching_the_provider_to_openai_swaps_the_model_and_shows_dollars(page, e2e_server):
    dataset_id = _dataset_without_system_messages(e2e_server)
    page.goto(f"/jobs/new?dataset_id={dataset_id}")
    model = page.locator("#job-model-input")
    expect(model).to_have_value("tiny-llama")
    page.locator("select[name=provider]").select_option("openai")
    expect(model).to_have_value("gpt-4o-mini-2024-07-18")
    facts = page.locator("#estimate-facts")
    expect(facts.locator("[data-key=cost] dd").first).to_contain_text("$")
    expect(facts).not_to_contain_text("Estimated time")
    notice = page.locator("#paid-notice")
    expect(notice).to_contain_text("No OpenAI key is set yet (see Settings). This provider bills your OpenAI account.")
    # One block: the sentence and its link flow on one line instead of splitting into columns.
    link, text = notice.get_by_role("link", name="Settings").bounding_box(), notice.locator("span").bounding_box()
    assert link is not None and text is not None and link["height"] > 0
    assert text["height"] < 2.5 * link["height"], (text, link)
    confirm = page.locator("#confirm-paid-label")
    _beside(confirm.locator("input"), confirm.locator("span"))
    screenshot(page, "job-form-2-openai")

    # And back: the local catalogue's model, a time on this machine instead of dollars.
    page.locator("select[name=provider]").select_option("local")
    expect(model).to_have_value("tiny-llama")
    expect(facts).not_to_contain_text("$")
    expect(facts.locator("dt").last).to_contain_text("Estimated time on this machine")
    screenshot(page, "job-form-3-local-again")


def test_the_report_says_once_which_tokenizer_counted_and_where_the_job_would_train(page, e2e_server):
    dataset_id = _dataset_without_system_messages(e2e_server)
    # SmolLM2 is not converted on this server: its tokenizer is read from the GGUF file alone (seconds).
    page.goto(f"/datasets/{dataset_id}/report?model=SmolLM2-135M-Instruct", timeout=90_000)
    report = page.locator("#report")
    expect(report.locator("#counted-with")).to_have_count(1)
    expect(report.locator("#counted-with")).to_contain_text("SmolLM2-135M-Instruct's own tokenizer and chat template")
    expect(report).not_to_contain_text("approximate")
    expect(report.locator("[data-testid=training-time]")).to_contain_text("min on CPU")
    expect(report).to_contain_text("tokens trained")
    screenshot(page, "job-form-4-report-smollm2")


def test_an_estimate_that_arrives_while_the_model_is_typed_leaves_the_typing_alone(page, e2e_server):
    """The estimate refreshes the base model out of band; one sent before the person's keystrokes arrives while they
    type: the field keeps what they typed (it once doubled a name: 'tiny-llamatiny-llama')."""
    dataset_id = _dataset_without_system_messages(e2e_server)
    page.goto(f"/jobs/new?dataset_id={dataset_id}")
    expect(page.locator("#estimate-facts")).to_be_visible()
    model = page.locator("#job-model-input")
    sent_with = model.input_value()
    held = []
    # The refresh's answer waits until the typing is done.
    page.route("**/jobs/new/estimate", lambda route: held.append(route))
    page.evaluate("() => document.getElementById('new-job').dispatchEvent(new Event('change', {bubbles: true}))")
    page.wait_for_function("() => document.querySelector('#new-job.htmx-request') !== null")
    model.fill("my-own-mod")  # typed after the refresh was sent, focus still in the field
    while not held:  # the route's handler runs as Playwright processes the page's events
        page.evaluate("() => 0")
    with page.expect_response("**/jobs/new/estimate"):
        held[0].continue_()
    page.wait_for_function("() => !document.querySelector('#new-job.htmx-request')")
    expect(page.locator("#job-estimate")).to_be_visible()
    assert sent_with != "my-own-mod"  # the answer carries the model as it was sent
    expect(model).to_have_value("my-own-mod")
    expect(model).to_be_focused()  # (out of the field, a provider switch still swaps the model: the test above)
