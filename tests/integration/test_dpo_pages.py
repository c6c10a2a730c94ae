"""The job form offers DPO (and beta) for a preference dataset only; a DPO job's page charts its preference."""

from __future__ import annotations

import json

from sqlmodel import select

from app.jobs.events import add_event
from app.tables import Job
from tests.integration.test_dpo_jobs import preference_dataset
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401


def test_the_form_offers_dpo_and_beta_for_a_preference_dataset_and_supervised_for_chats(client, session):
    prefs, chats = preference_dataset(session), make_dataset(session)
    html = client.get(f"/jobs/new?dataset_id={prefs.id}").text
    method = html[html.index('id="job-method"') :]
    assert '<option value="dpo" selected>' in method and 'name="beta" value="auto"' in method
    assert '<option value="supervised"' not in method[: method.index("</fieldset>")]
    fragment = client.post(
        "/jobs/new/estimate", data={"dataset_id": chats.id}, headers={"HX-Request": "true"}
    ).text  # choosing another dataset swaps the method out of band
    method = fragment[fragment.index('id="job-method"') :]
    assert 'hx-swap-oob="true"' in fragment[fragment.index('<fieldset id="job-method"') :][:80]
    assert '<option value="supervised" selected>' in method and 'name="beta"' not in method


def test_launching_from_a_preference_dataset_makes_a_dpo_job_with_its_beta(client, session):
    prefs = preference_dataset(session)
    data = {"dataset_id": prefs.id, "provider": "local", "model": "", "method": "dpo", "beta": "0.3"}
    response = client.post("/jobs", data={**data, "accept_warnings": "on"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    job = session.exec(select(Job)).one()
    assert job.method["type"] == "dpo" and job.hyperparameters["beta"] == 0.3
    refused = client.post("/jobs", data={**data, "beta": "-1"}, headers={"HX-Request": "true"})
    assert refused.status_code == 400 and "beta must be" in refused.text
    refused = client.post("/jobs", data={**data, "method": "supervised"}, headers={"HX-Request": "true"})
    assert refused.status_code == 400 and "preference examples" in refused.text


def test_a_dpo_jobs_page_charts_reward_margin_and_preference_accuracy(client, session):
    prefs = preference_dataset(session)
    client.post("/jobs", data={"dataset_id": prefs.id, "method": "dpo", "accept_warnings": "on"})
    job = session.exec(select(Job)).one()
    for step, margin in ((1, 0.0), (2, 0.4)):
        point = {
            "step": step,
            "total_steps": 2,
            "train_loss": 0.69,
            "train_reward_margin": margin,
            "train_reward_accuracy": step / 2,
        }
        add_event(session, job.id, f"Step {step}/2", type="metrics", data=point)
    html = client.get(f"/jobs/{job.id}").text
    assert 'id="preference-chart"' in html and "preference_chart.js" in html
    points = json.loads(html.split('id="preference-chart"')[1].split("data-points='")[1].split("'")[0])
    assert [p["train_reward_margin"] for p in points] == [0.0, 0.4]
    assert "reward margin 0.4 · preference accuracy 100%" in html
    chats = make_dataset(session, name="chats")
    client.post("/jobs", data={"dataset_id": chats.id, "accept_warnings": "on"})
    supervised = session.exec(select(Job).where(Job.id != job.id)).one()
    assert 'id="preference-chart"' not in client.get(f"/jobs/{supervised.id}").text
