"""Launching a job with an eval attached: the form's choice and its default, the evals-side door, /api."""

from __future__ import annotations

import re

from sqlmodel import select

from app.evals.evals import create_eval
from app.evals.job_evals import DEFAULT_GRADERS
from app.tables import Eval, Job
from tests.jobs_evals.conftest import settings, tiny_model
from tests.support.builders import make_dataset

__all__ = ["settings", "tiny_model"]

EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.reference}}",
    "operation": "eq",
}


def selected_choice(html: str) -> str:
    section = html[html.index('id="job-eval"') :]
    select_html = section[: section.index("</select>")]
    found = re.search(r'<option value="([^"]+)" selected', select_html)
    assert found, select_html
    return found.group(1)


def test_the_form_offers_the_eval_on_by_default_when_there_are_validation_examples(client, session):
    held_out = make_dataset(session, n_train=12, n_validation=4, name="held-out")
    plain = make_dataset(session, n_train=12, name="plain")
    html = client.get(f"/jobs/new?dataset_id={held_out.id}").text
    assert "Evaluate each checkpoint" in html and selected_choice(html) == "validation"
    assert "make one from the validation examples (4)" in html
    assert 'action="/jobs/new"' in html and 'hx-post="/jobs/new"' in html
    html = client.get(f"/jobs/new?dataset_id={plain.id}").text
    assert selected_choice(html) == "none"
    assert re.search(r'<option value="validation"[^>]* disabled>', html)


def test_the_choice_follows_the_dataset_until_the_user_makes_one(client, session):
    held_out = make_dataset(session, n_train=12, n_validation=4, name="held-out")
    plain = make_dataset(session, n_train=12, name="plain")
    refresh = {"dataset_id": plain.id, "validation": "split", "eval_choice": "none", "eval_for": f"{plain.id}:split"}
    fragment = client.post("/jobs/new/estimate", data=refresh, headers={"HX-Request": "true"}).text
    assert fragment.startswith('<div id="job-estimate"')
    assert 'id="job-eval" class="job-eval" hx-swap-oob="true"' in fragment
    # Another dataset with validation examples: the default (on) comes back for it.
    moved = dict(refresh, dataset_id=held_out.id)
    fragment = client.post("/jobs/new/estimate", data=moved, headers={"HX-Request": "true"}).text
    assert selected_choice(fragment) == "validation" and f'value="{held_out.id}:split"' in fragment
    # The user turns it off for that dataset: it stays off while the dataset stays.
    off = dict(moved, eval_choice="none", eval_for=f"{held_out.id}:split")
    fragment = client.post("/jobs/new/estimate", data=off, headers={"HX-Request": "true"}).text
    assert selected_choice(fragment) == "none"
    # A separate validation dataset counts too: all its examples are validation examples.
    other = dict(refresh, validation=str(held_out.id), eval_for="")
    fragment = client.post("/jobs/new/estimate", data=other, headers={"HX-Request": "true"}).text
    assert selected_choice(fragment) == "validation" and "validation examples (16)" in fragment


def test_launch_makes_the_eval_from_the_validation_split_and_attaches_it(client, session, settings):
    ds = make_dataset(session, n_train=12, n_validation=4, name="held-out")
    response = client.post(
        "/jobs/new", data={"dataset_id": ds.id, "eval_choice": "validation"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 204, response.text
    job = session.exec(select(Job)).one()
    assert response.headers["HX-Redirect"] == f"/jobs/{job.id}"
    made = session.get(Eval, job.eval_id)
    assert made is not None and made.dataset_id == ds.id and made.split == "validation"
    assert made.name == "held-out eval" and made.testing_criteria == DEFAULT_GRADERS
    assert [g["type"] for g in made.testing_criteria] == ["text_similarity", "string_check"]
    assert made.testing_criteria[0]["evaluation_metric"] == "fuzzy_match"
    assert made.testing_criteria[0]["pass_threshold"] == 0.8


def test_a_separate_validation_dataset_is_evaluated_whole(client, session):
    train = make_dataset(session, n_train=12, name="train")
    valid = make_dataset(session, n_train=5, name="valid")
    data = {"dataset_id": train.id, "validation": str(valid.id), "eval_choice": "validation", "accept_warnings": "on"}
    response = client.post("/jobs/new", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    made = session.get(Eval, session.exec(select(Job)).one().eval_id)
    assert made.dataset_id == valid.id and made.split == "all"


def test_an_existing_eval_or_none(client, session, settings):
    ds = make_dataset(session, n_train=12, n_validation=4)
    existing = create_eval(session, settings, name="mine", testing_criteria=[EXACT], dataset_id=ds.id)
    html = client.get(f"/jobs/new?dataset_id={ds.id}").text
    assert f'<option value="{existing.id}" >eval: mine</option>' in html
    client.post("/jobs/new", data={"dataset_id": ds.id, "eval_choice": existing.id, "suffix": "a"})
    client.post("/jobs/new", data={"dataset_id": ds.id, "eval_choice": "none", "suffix": "b"})
    jobs = {j.suffix: j for j in session.exec(select(Job)).all()}
    assert jobs["a"].eval_id == existing.id and jobs["b"].eval_id is None
    assert len(session.exec(select(Eval)).all()) == 1  # no eval made for either


def test_a_refused_launch_leaves_no_eval_behind(client, session):
    ds = make_dataset(session, n_train=12, n_validation=4)
    response = client.post(
        "/jobs/new",
        data={"dataset_id": ds.id, "eval_choice": "validation", "n_epochs": "lots"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400 and "n epochs" in response.text
    assert session.exec(select(Eval)).first() is None and session.exec(select(Job)).first() is None


def test_no_validation_examples_no_eval(client, session):
    ds = make_dataset(session, n_train=12)
    response = client.post(
        "/jobs/new", data={"dataset_id": ds.id, "eval_choice": "validation"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400 and "no validation examples" in response.text
    assert session.exec(select(Job)).first() is None


def test_the_plain_jobs_door_takes_an_existing_eval_but_cannot_make_one(client, session, settings):
    ds = make_dataset(session, n_train=12, n_validation=4)
    response = client.post(
        "/jobs", data={"dataset_id": ds.id, "eval_choice": "validation"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400 and "POST /jobs/new" in response.text
    existing = create_eval(session, settings, name="mine", testing_criteria=[EXACT], dataset_id=ds.id)
    response = client.post("/jobs", data={"dataset_id": ds.id, "eval_choice": existing.id}, follow_redirects=False)
    assert response.status_code == 303
    assert session.exec(select(Job)).one().eval_id == existing.id


def test_api_accepts_an_eval_id_and_refuses_an_unknown_one(api, session, settings):
    ds = make_dataset(session, n_train=12, n_validation=4)
    existing = create_eval(session, settings, name="mine", testing_criteria=[EXACT], dataset_id=ds.id)
    created = api.post("/api/jobs", json={"dataset_id": ds.id, "eval_id": existing.id})
    assert created.status_code == 201, created.text
    assert created.json()["eval_id"] == existing.id
    assert api.get(f"/api/jobs/{created.json()['id']}").json()["eval_id"] == existing.id
    unknown = api.post("/api/jobs", json={"dataset_id": ds.id, "eval_id": "eval_nope"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "eval_not_found"
    # A re-run checks its checkpoints on the same eval.
    rerun = api.post(f"/api/jobs/{created.json()['id']}/rerun")
    assert rerun.status_code == 201 and rerun.json()["eval_id"] == existing.id
