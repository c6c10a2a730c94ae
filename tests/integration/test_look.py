"""Issue #17: one visual system, jobs as list and detail, friendly names instead of raw ids, keyboard access."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session

from app.jobs.naming import short_date
from app.tables import Checkpoint, Dataset, Job, JobEvent, JobStatus, TunedModel
from app.tables.common import utcnow
from app.web.rendering import STATIC

PAGES = ["/", "/jobs", "/datasets", "/evals", "/models", "/playground", "/settings"]
MODEL_ID = "ft:SmolLM2-135M-Instruct:support-bot:ftjob-look1"


def seed(session: Session) -> tuple[Job, Job, str]:
    """A succeeded job with a suffix, dataset, metrics, a checkpoint and its tuned model; a failed one; its name."""
    dataset = Dataset(name="Pirate voice")
    session.add(dataset)
    session.commit()
    now = utcnow()
    done = Job(
        model="SmolLM2-135M-Instruct",
        status=JobStatus.succeeded,
        suffix="support-bot",
        dataset_id=dataset.id,
        started_at=now - timedelta(minutes=10),
        finished_at=now,
        fine_tuned_model=MODEL_ID,
        trained_tokens=5586,
    )
    failed = Job(model="SmolLM2-135M-Instruct", status=JobStatus.failed, dataset_id=dataset.id, finished_at=now)
    session.add_all([done, failed])
    session.commit()
    session.add(TunedModel(id=MODEL_ID, job_id=done.id, base_model=done.model, path="models/x"))
    session.add(
        Checkpoint(
            job_id=done.id, step_number=30, fine_tuned_model_checkpoint=f"{MODEL_ID}:ckpt-step-30", path="ckpt/x"
        )
    )
    for step in (1, 2):
        data = {"step": step, "total_steps": 2, "train_loss": 1.5 / step, "valid_loss": 2.25}
        session.add(JobEvent(job_id=done.id, type="metrics", message=f"Step {step}/2", data=data))
    session.commit()
    return done, failed, f"support-bot · SmolLM2-135M · Pirate voice · {short_date(done.created_at)}"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_starts_with_a_skip_link_to_main_and_names_its_navigation(client, path):
    html = client.get(path).text
    body = html.split("<body>", 1)[1]
    first_focusable = re.search(r"<(a|button|input|select|textarea)\b[^>]*>", body)
    assert first_focusable is not None
    assert 'class="skip-link" href="#main"' in first_focusable.group(0)
    assert '<main class="container" id="main" tabindex="-1">' in html
    assert '<nav aria-label="Main">' in html


def test_app_css_has_tokens_focus_rings_and_a_badge_with_a_dot_for_every_job_status():
    css = (STATIC / "app.css").read_text()
    for token in ("--text-sm", "--text-2xl", "--space-1", "--space-6", "--surface", "--ink", "--muted", "--accent"):
        assert f"{token}:" in css, token
    for tone in ("ok", "warn", "err"):
        assert f"--{tone}:" in css and f"--{tone}-soft:" in css
    for token in ("--radius-sm", "--radius-lg", "--shadow-sm", "--shadow-md"):
        assert f"{token}:" in css, token
    for status in JobStatus:
        assert re.search(rf"\.badge\.{status.value}\b", css), status
    assert ".badge::before" in css  # the dot: a status is never told by colour alone
    assert ":focus-visible" in css and ".skip-link:focus" in css
    for piece in (".tile-label", ".tile-value", ".tile-hint", ".empty-title"):
        assert piece in css


def test_jobs_list_names_jobs_in_words_beside_an_empty_detail_pane(client, session):
    done, _failed, name = seed(session)
    html = client.get("/jobs").text
    assert name in html
    assert 'id="job-pane"' in html and "Pick a job to see how it went" in html
    item = html.split(f'href="/jobs/{done.id}"', 1)[1].split("</a>", 1)[0]
    assert f'hx-get="/jobs/{done.id}"' in item and 'hx-target="#job-pane"' in item and 'hx-push-url="true"' in item
    assert '<span class="badge succeeded">succeeded</span>' in item and "<time datetime=" in item
    assert "ft:SmolLM2" not in html.split('id="jobs-list"', 1)[1]  # no raw model ids in the list


def test_a_job_url_renders_the_list_beside_the_selected_job(client, session):
    done, failed, name = seed(session)
    html = client.get(f"/jobs/{done.id}").text
    assert 'id="jobs-list"' in html and f'data-job-id="{failed.id}"' in html
    selected = html.split(f'href="/jobs/{done.id}"', 1)[1].split(">", 1)[0]
    assert 'aria-current="page"' in selected
    assert f'<h2 id="job-title">{name}</h2>' in html
    assert f'<code id="job-id">{done.id}</code>' in html  # the id one click away, with a copy button
    assert 'data-copy="#job-id"' in html
    assert f"<title>{name} · Tuneboard</title>" in html


def test_a_click_in_the_list_gets_the_detail_and_the_list_out_of_band(client, session):
    done, failed, _name = seed(session)
    pane = client.get(f"/jobs/{failed.id}", headers={"HX-Request": "true", "HX-Target": "job-pane"}).text
    assert "<html" not in pane and 'id="job-summary"' in pane and 'id="loss-chart"' in pane
    assert 'id="jobs-list" hx-swap-oob="true"' in pane
    assert 'aria-current="page"' in pane.split(f'href="/jobs/{failed.id}"', 1)[1].split(">", 1)[0]
    summary = client.get(f"/jobs/{done.id}", headers={"HX-Request": "true"}).text
    assert 'class="job-summary"' in summary and "jobs-list" not in summary
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert "<html" in client.get(f"/jobs/{done.id}", headers=restore).text
    assert "<html" in client.get("/jobs", headers=restore).text


def test_the_jobs_list_keeps_the_selected_job_while_it_refreshes(client, session):
    done, _failed, _name = seed(session)
    session.add(Job(model="SmolLM2-135M-Instruct", status=JobStatus.running, started_at=utcnow()))
    session.commit()
    html = client.get(f"/jobs/{done.id}").text
    assert f'hx-get="/jobs?selected={done.id}" hx-trigger="every 2s"' in html
    fragment = client.get(f"/jobs?selected={done.id}", headers={"HX-Request": "true", "HX-Target": "jobs-list"}).text
    assert 'aria-current="page"' in fragment.split(f'href="/jobs/{done.id}"', 1)[1].split(">", 1)[0]


def test_the_job_page_names_its_tuned_model_and_keeps_the_id_one_click_away(client, session):
    done, _failed, name = seed(session)
    summary = client.get(f"/jobs/{done.id}", headers={"HX-Request": "true"}).text
    link = f'<a class="name" href="/playground?model={MODEL_ID.replace(":", "%3A")}">{name}</a>'
    assert link in summary
    reveal = '<details class="id-reveal"><summary aria-label="Show the full id">id</summary>'
    assert f'{reveal}<code id="tuned-model-id">{MODEL_ID}</code>' in summary


def test_the_loss_chart_has_a_name_and_the_latest_losses_as_its_text_alternative(client, session):
    done, _failed, _name = seed(session)
    html = client.get(f"/jobs/{done.id}").text
    chart = html.split('<div id="loss-chart"', 1)[1].split(">", 1)[0]
    assert 'role="img"' in chart and 'aria-label="Loss chart: training and validation loss by step"' in chart
    assert 'aria-describedby="loss-latest"' in chart
    latest = html.split('id="loss-latest"', 1)[1].split("</div>", 1)[0]
    assert "Training loss" in latest and "0.7500" in latest and "at step 2; validation loss 2.2500" in latest


def test_home_names_recent_jobs_in_words_and_counts_in_tiles(client, session):
    done, _failed, name = seed(session)
    html = client.get("/").text
    assert name in html and f'href="/jobs/{done.id}"' in html
    assert html.count('class="tile"') == 3 and '<span class="tile-label">Tuned models</span>' in html


def test_models_page_names_each_model_with_its_id_one_click_away(client, session):
    seed(session)
    html = client.get("/models").text
    row = html.split('id="tuned-models"', 1)[1]
    assert '<span class="name">support-bot · SmolLM2-135M · Pirate voice · ' in row
    assert f'<code id="model-id-1">{MODEL_ID}</code>' in row


def test_the_playground_picker_labels_tuned_models_and_checkpoints_by_name(client, session):
    _done, _failed, name = seed(session)
    html = client.get("/playground").text
    assert f'<option value="{MODEL_ID}" title="{MODEL_ID}">{name}</option>' in html
    assert f'<option value="{MODEL_ID}:ckpt-step-30" title="{MODEL_ID}:ckpt-step-30">{name} · step 30</option>' in html


def test_the_playground_message_box_has_a_label(client):
    html = client.get("/playground").text
    assert '<label for="pg-input" class="sr-only">Message</label>' in html
    assert '<textarea id="pg-input"' in html


@pytest.mark.parametrize(
    ("path", "title", "action"),
    [
        ("/jobs", "No fine-tuning jobs yet", '<a class="button primary" href="/datasets">Create a dataset</a>'),
        ("/models", "No tuned models yet", '<a class="button primary" href="/jobs/new">Start a fine-tune</a>'),
        ("/datasets", "No datasets yet", 'action="/sample-dataset"'),
        ("/evals", "No evals yet", '<a class="button primary" href="/evals/new">'),
        ("/playground", "No messages yet", 'id="pg-input"'),
    ],
)
def test_empty_pages_say_what_the_thing_is_and_what_to_do_next(client, path, title, action):
    html = client.get(path).text
    assert title in html and action in html


def test_the_empty_jobs_page_offers_a_fine_tune_once_there_is_a_dataset(client, session):
    session.add(Dataset(name="Pirate voice"))
    session.commit()
    html = client.get("/jobs").text
    assert 'id="jobs-empty"' in html and '<a class="button primary" href="/jobs/new">Start a fine-tune</a>' in html
