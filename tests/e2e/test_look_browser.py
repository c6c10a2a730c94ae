"""Issue #17 in Chromium: the skip link comes first, names for the nav, chart and message box, the jobs list and
detail swapping without a reload, friendly names on every page; screenshots of each main page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.jobs.naming import job_names
from app.tables import Checkpoint, Dataset, Job, JobEvent, JobStatus, TunedModel
from app.tables.common import utcnow
from tests.e2e.conftest import TINY, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def seed_jobs(server, suffix: str) -> tuple[str, str, dict[str, str]]:
    """A finished job with metrics, a checkpoint and its tuned model, and a failed one; their ids and names."""
    with Session(server.app.state.engine, expire_on_commit=False) as session:
        dataset = Dataset(name=f"Look {suffix}")
        session.add(dataset)
        session.commit()
        now = utcnow()
        model_id = f"ft:{TINY}:{suffix}:look"
        done = Job(
            model=TINY,
            status=JobStatus.succeeded,
            suffix=suffix,
            dataset_id=dataset.id,
            started_at=now - timedelta(minutes=8),
            finished_at=now,
            trained_tokens=4200,
            fine_tuned_model=model_id,
            hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 2.0},
        )
        failed = Job(
            model=TINY,
            status=JobStatus.failed,
            dataset_id=dataset.id,
            started_at=now - timedelta(minutes=3),
            finished_at=now,
            error={"code": "oom", "message": "The training process ran out of memory.", "param": None},
        )
        session.add_all([done, failed])
        session.commit()
        session.add(TunedModel(id=model_id, job_id=done.id, base_model=TINY, path="models/look"))
        session.add(Checkpoint(job_id=done.id, step_number=10, fine_tuned_model_checkpoint=f"{model_id}:ckpt-step-10"))
        for step in range(1, 21):
            data = {"step": step, "total_steps": 20, "train_loss": 3.0 / step, "valid_loss": 1.0 + 0.02 * step}
            session.add(JobEvent(job_id=done.id, type="metrics", message=f"Step {step}/20", data=data))
        session.commit()
        return done.id, failed.id, job_names(session, [done, failed])


def test_tab_from_the_top_reaches_the_skip_link_first_and_it_moves_focus_to_main(page, e2e_server):
    page.goto("/jobs")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()  # hidden until focused, then shown over the top bar
    screenshot(page, "look-01-skip-link")
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs")).to_have_attribute(
        "aria-current", "page"
    )


def test_the_jobs_list_and_detail_swap_the_selected_job_without_a_reload(page, e2e_server):
    done, failed, names = seed_jobs(e2e_server, "list-detail")
    page.goto("/jobs")
    expect(page.locator("#job-pane")).to_contain_text("Pick a job to see how it went")
    screenshot(page, "look-02-jobs-list")

    page.evaluate("() => { window.tbSamePage = true; }")
    page.locator(f'#jobs-list a[data-job-id="{done}"]').click()
    page.wait_for_url(f"**/jobs/{done}")
    expect(page.get_by_role("heading", name=names[done])).to_be_visible()
    expect(page.locator(f'#jobs-list a[data-job-id="{done}"]')).to_have_attribute("aria-current", "page")
    chart = page.get_by_role("img", name="Loss chart: training and validation loss by step")
    expect(chart).to_have_accessible_description(
        re.compile(r"Training loss 0\.1500 at step 20; validation loss 1\.4000")
    )
    expect(chart.locator('path[data-series="train_loss"]')).to_have_count(1)  # drawn on swapped-in content
    expect(page).to_have_title(f"{names[done]} · Tuneboard")
    summary = page.locator("#job-summary")
    expect(summary.get_by_role("link", name=names[done])).to_be_visible()
    summary.locator("details.id-reveal summary").press("Enter")  # a <summary>: the keyboard opens it too
    expect(summary.locator("#tuned-model-id")).to_have_text(f"ft:{TINY}:list-detail:look")
    expect(summary.get_by_role("button", name="Copy the full id")).to_be_visible()
    screenshot(page, "look-03-job-detail")

    page.locator(f'#jobs-list a[data-job-id="{failed}"]').click()
    page.wait_for_url(f"**/jobs/{failed}")
    expect(page.locator("#job-status")).to_have_text("failed")
    expect(page.locator("#job-pane")).to_contain_text("ran out of memory")
    expect(page.locator(f'#jobs-list a[data-job-id="{done}"]')).not_to_have_attribute("aria-current", "page")
    assert page.evaluate("() => window.tbSamePage === true")

    page.go_back()  # history restore asks for the whole page: the finished job again, beside the list
    page.wait_for_url(f"**/jobs/{done}")
    expect(page.get_by_role("heading", name=names[done])).to_be_visible()
    expect(page.locator("#jobs-list")).to_be_visible()

    page.set_viewport_size({"width": 420, "height": 900})  # narrow: the list stacks under the detail
    page.goto(f"/jobs/{done}")
    pane, listing = page.locator("#job-pane").bounding_box(), page.locator(".split-list").bounding_box()
    assert pane is not None and listing is not None and listing["y"] > pane["y"]
    screenshot(page, "look-04-job-narrow")


def test_home_models_and_playground_name_models_in_words(page, e2e_server):
    done, _failed, names = seed_jobs(e2e_server, "words")
    page.goto("/")
    expect(page.locator(".recent-jobs").get_by_role("link", name=re.compile(re.escape(names[done])))).to_be_visible()
    expect(page.locator(".tiles .tile")).to_have_count(3)
    screenshot(page, "look-05-home")

    page.goto("/models")
    row = page.locator("#tuned-models tr", has_text=names[done])
    expect(row).to_have_count(1)
    expect(row.locator("code")).to_be_hidden()  # the id is one click away, not in the way
    row.locator("details.id-reveal summary").click()
    expect(row.locator("code")).to_have_text(f"ft:{TINY}:words:look")
    screenshot(page, "look-06-models")

    page.goto(f"/playground?model=ft:{TINY}:words:look")
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_have_id("pg-input")
    picker = page.get_by_role("combobox", name="Model", exact=True)  # named by itself, not by its options' text
    expect(picker).to_have_value(f"ft:{TINY}:words:look")
    expect(picker.locator("option:checked")).to_have_text(names[done])
    screenshot(page, "look-07-playground")
