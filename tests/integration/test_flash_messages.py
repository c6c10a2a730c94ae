"""Every destructive action on the dashboard ends with a message saying what was done: a short-lived cookie that
app/static/app.js shows in #flash on the page the browser lands on (so it survives a redirect)."""

from __future__ import annotations

from urllib.parse import unquote

from sqlmodel import Session, select

from app.settings.page import new_api_key
from app.settings.store import MAINTENANCE, set_value
from app.tables import ApiKey, Checkpoint, Example, Job, JobStatus, TunedModel
from app.web.rendering import FLASH_COOKIE
from tests.support.builders import make_dataset

HX = {"HX-Request": "true"}


def flashed(response) -> str:
    """The message a response asks the page to show, or ""."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(FLASH_COOKIE + "="):
            return unquote(header.split(";", 1)[0].split("=", 1)[1])
    return ""


def test_deleting_a_dataset_says_which_and_how_many_examples_went(client, session):
    dataset = make_dataset(session, n_train=3, name="old stuff")
    other = make_dataset(session, n_train=1, name="from its page")
    plain = client.post(f"/datasets/{dataset.id}/delete", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"] == "/datasets"
    assert flashed(plain) == "Deleted “old stuff” and its 3 examples."
    from_page = client.post(
        f"/datasets/{other.id}/delete", headers={**HX, "HX-Current-URL": f"http://testserver/datasets/{other.id}"}
    )
    assert from_page.headers["HX-Redirect"] == "/datasets"
    assert flashed(from_page) == "Deleted “from its page” and its 1 example."


def test_deleting_an_example_and_bulk_deleting_without_javascript_say_so(client, session):
    dataset = make_dataset(session, n_train=4)
    examples = session.exec(select(Example).where(Example.dataset_id == dataset.id).order_by(Example.position)).all()
    one = client.post(f"/examples/{examples[1].id}/delete", follow_redirects=False)
    assert one.status_code == 303 and flashed(one) == "Deleted example #2."
    bulk = client.post(
        f"/datasets/{dataset.id}/bulk",
        data={"action": "delete", "ids": [str(examples[0].id), str(examples[2].id)]},
        follow_redirects=False,
    )
    assert bulk.status_code == 303 and flashed(bulk) == "Deleted 2 examples."


def test_revoking_a_key_names_the_key(client, session):
    new_api_key(session.get_bind(), "laptop")
    key = session.exec(select(ApiKey).where(ApiKey.name == "laptop")).one()
    response = client.post(f"/settings/api-keys/{key.id}/revoke", headers=HX)
    assert response.status_code == 200
    assert flashed(response) == f"Revoked the API key “laptop” ({key.prefix}…): it no longer works."


def test_cancelling_a_job_and_deleting_its_model_say_what_happened(client, session: Session):
    set_value(session, MAINTENANCE, True)
    queued = Job(model="tiny-llama", status=JobStatus.queued)
    session.add(queued)
    session.commit()
    cancelled = client.post(f"/jobs/{queued.id}/cancel", headers=HX)
    assert flashed(cancelled) == f"Cancelled job {queued.id}."

    done = Job(model="tiny-llama", status=JobStatus.succeeded, fine_tuned_model="ft:tiny-llama:x:ftjob-flash")
    session.add(done)
    session.commit()
    session.add(TunedModel(id="ft:tiny-llama:x:ftjob-flash", job_id=done.id, base_model="tiny-llama", path="m/x"))
    session.add(Checkpoint(job_id=done.id, step_number=1, fine_tuned_model_checkpoint="ft:c", path="c/x"))
    session.commit()
    deleted = client.post(f"/jobs/{done.id}/delete-model", follow_redirects=False)
    assert deleted.status_code == 303
    assert flashed(deleted) == "Deleted the tuned model ft:tiny-llama:x:ftjob-flash. Its checkpoints stay available."


def test_a_refused_action_flashes_nothing(client, session):
    queued = Job(model="tiny-llama", status=JobStatus.queued)  # maintenance is off: cancelling is refused
    session.add(queued)
    session.commit()
    refused = client.post(f"/jobs/{queued.id}/cancel", headers=HX)
    assert refused.status_code == 403 and flashed(refused) == ""
