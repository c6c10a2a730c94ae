"""The path a new user takes, in one browser tab: import a flawed file, fix it, check it, tune, watch, chat, save."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import FIXTURES
from tests.e2e.conftest import TINY, screenshot
from tests.e2e.job_form import fill_job_form, launch_job

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BROKEN_REPLY_QUESTION = "Where be the treasure buried?"
FIXED_REPLY = "Under the old palm tree, matey, ten paces east. Arrr!"
EDITED_REPLY = "Ahoy! I be a tuned pirate, and proud of it."


def flawed_jsonl(directory: Path) -> tuple[Path, int]:
    """The pirate set with two unreadable lines and one example whose assistant reply is empty."""
    good = [line for line in (FIXTURES / "pirate_training_set.jsonl").read_text("utf-8").splitlines() if line]
    broken = {
        "messages": [
            {"role": "system", "content": "You are a helpful pirate assistant."},
            {"role": "user", "content": BROKEN_REPLY_QUESTION},
            {"role": "assistant", "content": ""},
        ]
    }
    lines = [*good[:4], "{this is not json", json.dumps(broken), *good[4:], '["a list, not an object"]']
    path = directory / "pirate-with-mistakes.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path, len(good) + 1


def chart_points(page) -> int:
    """How many training-loss points the job page's chart draws right now."""
    return page.evaluate("""() => {
        const path = document.querySelector('#loss-chart path[data-series="train_loss"]');
        return path ? (path.getAttribute('d').match(/[ML]/g) || []).length : 0;
    }""")


def test_a_new_user_imports_fixes_checks_tunes_watches_chats_and_saves_an_example(page, tmp_path):
    source, n_examples = flawed_jsonl(tmp_path)

    # A new dataset, then the flawed file through the import box.
    page.goto("/datasets")
    page.get_by_label("Dataset name").fill("Pirate voice")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("h1")).to_have_text("Pirate voice")
    page.locator("#import-zone input[type=file]").set_input_files(str(source))
    page.locator("#import-zone").get_by_role("button", name="Upload").click()
    result = page.locator("#import-result")
    # The summary counts the invalid example among the imported ones and lists it by its file line.
    expect(result).to_contain_text(f"Imported {n_examples} examples, 1 of them invalid.")
    expect(result).to_contain_text("2 lines rejected")
    invalid_lines = result.locator("table.invalid tbody tr")
    expect(invalid_lines).to_have_count(1)
    expect(invalid_lines.nth(0)).to_contain_text("missing_content")
    rejected = result.locator("table.rejected:not(.invalid) tbody tr")
    expect(rejected).to_have_count(2)
    expect(rejected.nth(0)).to_contain_text("invalid_json")
    expect(rejected.nth(1)).to_contain_text("not_an_object")
    # The list refreshes by itself after the import and flags the one invalid example.
    expect(page.locator("#dataset-body .counts")).to_contain_text(f"{n_examples} examples")
    expect(page.locator("#dataset-body .counts .badge.invalid")).to_have_text("1 invalid")
    invalid_row = page.locator("#dataset-body tr.invalid")
    expect(invalid_row).to_have_count(1)
    expect(invalid_row).to_contain_text(BROKEN_REPLY_QUESTION)
    screenshot(page, "01-dataset-after-import")

    # The editor shows the problem on its message; typing the reply turns the live check green.
    invalid_row.locator("a.example-link").click()
    expect(page.locator("#problems .check-result")).to_have_attribute("data-valid", "false")
    expect(page.locator("#problems")).to_contain_text("Message 3 has empty content")
    expect(page.locator(".message-row.has-error")).to_have_count(1)
    screenshot(page, "02-editor-invalid")
    page.locator(".message-row.has-error textarea[name=msg_content]").fill(FIXED_REPLY)
    expect(page.locator("#problems .check-result")).to_have_attribute("data-valid", "true")
    expect(page.locator("#problems")).to_contain_text("No problems found")
    page.locator("#editor-form").get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#editor .flash")).to_contain_text("Saved (version 2)")
    expect(page.locator(".message-row.has-error")).to_have_count(0)
    screenshot(page, "03-editor-fixed")

    # The report: no errors left, and an estimate for the local model.
    page.get_by_role("link", name="Pirate voice").click()
    expect(page.locator("#dataset-body .counts .badge.valid")).to_have_text("0 invalid")
    page.get_by_role("link", name="Report").click()
    report = page.locator("#report")
    expect(report.locator("table.report-problems tr.error")).to_have_count(0)
    expect(report.locator("[data-testid=epochs]")).to_have_text(re.compile(r"^\s*\d+\s*$"))
    expect(report).to_contain_text("charged tokens")
    expect(report.locator("[data-testid=cost]")).to_have_text(re.compile(r"^\$\d+\.\d\d$"))
    page.locator("#report-model").select_option(TINY)  # htmx swaps the report for the local model
    expect(page).to_have_url(re.compile(f"model={TINY}"))
    expect(report).to_contain_text("Estimated training time")
    expect(report.locator("table.report-problems tr.error")).to_have_count(0)
    screenshot(page, "04-report")

    # Launch a local job on the tiny model from the "Fine-tune…" form.
    page.get_by_role("link", name="← Pirate voice").click()
    page.get_by_role("link", name="Fine-tune…").click()
    expect(page).to_have_url(re.compile(r"/jobs/new\?dataset_id=\d+$"))
    # The seed last: its change event refreshes the estimate for these values.
    fields = {
        "Validation": "none",
        "Provider": "local",
        "Base model": TINY,
        "Epochs": "6",
        "Batch size": "1",
        "Seed": "7",
    }
    fill_job_form(page, fields)
    screenshot(page, "05-new-job")
    launch_job(page)

    # The live page: the event log and the loss chart grow without a reload (the marker would not survive one).
    page.evaluate("() => { window.tbSamePage = true; }")
    log = page.locator("#event-log li")
    rows_at_load = log.count()
    points_at_load = chart_points(page)
    page.wait_for_function("n => document.querySelectorAll('#event-log li').length > n", arg=rows_at_load + 2)
    page.wait_for_function(
        """n => { const p = document.querySelector('#loss-chart path[data-series="train_loss"]');
                  return p && (p.getAttribute('d').match(/[ML]/g) || []).length > n; }""",
        arg=max(points_at_load, 1) + 1,
    )
    screenshot(page, "06-job-running")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=180_000)
    assert log.count() > rows_at_load + 2
    assert chart_points(page) > max(points_at_load, 1) + 1
    expect(page.locator("#event-log")).to_contain_text("The job has successfully completed")
    assert page.evaluate("() => window.tbSamePage === true")
    screenshot(page, "07-job-succeeded")

    # Chat with the tuned model: the reply streams into the transcript.
    page.locator("#job-summary").get_by_role("link", name=re.compile(re.escape(TINY))).click()
    expect(page.locator("h1")).to_have_text("Playground")
    tuned = page.locator(".pg-model").input_value()
    assert tuned.startswith(f"ft:{TINY}") or TINY in tuned, tuned
    page.locator("#pg-max-tokens").fill("12")
    page.locator("#pg-input").fill("Ahoy, who are you?")
    page.get_by_role("button", name="Send").click()
    reply = page.locator(".transcript .msg-assistant .msg-text").last
    expect(reply).not_to_be_empty()
    expect(page.locator(".msg-text.streaming")).to_have_count(0)
    expect(page.locator("#pg-send")).to_be_enabled()
    screenshot(page, "08-playground-reply")

    # Save the reply, edited, as a new example of the dataset.
    page.locator("#pg-save summary").click()
    save = page.locator("#pg-save-form")
    expect(save.locator("#pg-save-reply")).not_to_have_value("")
    save.get_by_label("Dataset").select_option(label="Pirate voice")
    save.get_by_label("Split").select_option("train")
    save.locator("#pg-save-reply").fill(EDITED_REPLY)
    save.get_by_role("button", name="Save example").click()
    saved = page.locator("#pg-save-result .saved-example")
    expect(saved).to_contain_text("Saved as example")
    screenshot(page, "09-playground-saved")
    saved.get_by_role("link", name="the dataset").click()
    expect(page.locator("#dataset-body .counts")).to_contain_text(f"{n_examples + 1} examples")
    expect(page.locator("#dataset-body table.examples-table")).to_contain_text(EDITED_REPLY[:60])
    screenshot(page, "10-dataset-with-saved-example")
