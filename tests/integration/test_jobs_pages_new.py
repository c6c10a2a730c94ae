"""The "New fine-tune" form: estimate before launch, paid-provider confirmation, launch to the job page."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.engine.testing import build_tiny_model
from app.home.summary import import_sample
from app.tables import Job
from app.tables.migrate import upgrade
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def settings(tmp_path, tiny_model):
    # A tiny local base model keeps local token counting fast (SmolLM2 would be converted first).
    s = make_settings(tmp_path / "data", local_models={"tiny-llama": tiny_model}, default_base_model="tiny-llama")
    upgrade(s)
    return s


def test_form_preselects_the_dataset_and_shows_the_estimate(client, session):
    ds = import_sample(session)
    html = client.get(f"/jobs/new?dataset_id={ds.id}").text
    assert f'<option value="{ds.id}" selected>' in html
    assert 'hx-post="/jobs/new/estimate"' in html and 'name="csrf_token"' in html
    facts = html[html.index('id="estimate-facts"') :]
    assert "<dt>Epochs</dt>" in facts and "<dt>Tokens trained</dt>" in facts
    assert "Estimated time on this machine&#39;s CPU" in facts
    # Raw field names and billing words are gone: a free local model is trained, not billed.
    for raw in ("n epochs", "charged tokens", "billing tokens", "training seconds", "Cost"):
        assert raw not in facts


def test_estimate_fragment_refreshes_for_the_chosen_provider_and_asks_to_confirm_paid_ones(client, session):
    ds = import_sample(session)
    fragment = client.post(
        "/jobs/new/estimate",
        data={"dataset_id": ds.id, "provider": "openai", "model": "gpt-4o-mini-2024-07-18"},
        headers={"HX-Request": "true"},
    ).text
    assert fragment.startswith('<div id="job-estimate"')
    assert "<dt>Cost</dt>" in fragment and "<dd>$" in fragment and 'name="confirm_paid"' in fragment
    assert "<dt>Tokens billed</dt>" in fragment and "Estimated time" not in fragment


def test_paid_launch_without_confirmation_is_refused_and_creates_nothing(client, session):
    ds = import_sample(session)
    response = client.post(
        "/jobs",
        data={"dataset_id": ds.id, "provider": "openai", "model": "gpt-4o-mini-2024-07-18"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400 and "confirmation box" in response.text
    assert session.exec(select(Job)).first() is None


def test_bad_hyperparameter_names_the_field(client, session):
    ds = import_sample(session)
    response = client.post("/jobs", data={"dataset_id": ds.id, "n_epochs": "lots"}, headers={"HX-Request": "true"})
    assert response.status_code == 400 and "n epochs must be" in response.text


def test_local_launch_creates_the_job_and_opens_its_page(client, session):
    ds = import_sample(session)
    response = client.post(
        "/jobs",
        data={
            "dataset_id": ds.id,
            "provider": "local",
            "model": "",
            "n_epochs": "2",
            "suffix": "pirate",
            "seed": "7",
            "validation": "split",
            "accept_warnings": "on",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    job = session.exec(select(Job)).one()
    assert response.headers["location"] == f"/jobs/{job.id}"
    assert job.suffix == "pirate" and job.seed == 7 and job.dataset_id == ds.id
    assert job.hyperparameters["n_epochs"] == 2
