"""Stored and reflected XSS: every payload in xss_payloads.txt goes everywhere user text can, every page is read."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlmodel import Session

from app.main import create_app
from app.tables import Checkpoint, Conversation, Job, JobEvent, JobStatus, TunedModel
from app.tables.common import utcnow
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, csrf_token, make_settings
from tests.security.escaping import PAYLOADS, injections, sse_data
from tests.security.routes import all_cases

FILTER_PARAMS = ("q", "status", "provider", "split", "valid", "sort", "model", "next", "dataset_id", "message")


def test_there_are_at_least_fifty_distinct_payloads():
    assert len(set(PAYLOADS)) >= 50


def test_the_checker_catches_an_unescaped_payload_and_passes_an_escaped_one():
    raw = f"<p>{PAYLOADS[2]}</p>"
    assert injections(raw)
    assert injections(f'<p>{escape(PAYLOADS[2])}</p><input value="{escape(PAYLOADS[13])}">') == []


def _seed_datasets(api: TestClient) -> dict:
    """Datasets named after payloads; examples whose text, notes, roles and extra keys are payloads."""
    ids = {}
    for payload in PAYLOADS:
        response = api.post("/api/datasets", json={"name": payload[:200], "description": payload})
        assert response.status_code == 201, response.text
    dataset_id = api.post("/api/datasets", json={"name": "xss examples", "description": PAYLOADS[0]}).json()["id"]
    ids["dataset_id"] = dataset_id
    example_ids = []
    for _i, payload in enumerate(PAYLOADS[:45]):
        record = {
            "messages": [
                {"role": "system", "content": payload},
                {"role": "user", "content": payload},
                {"role": "assistant", "content": payload, "name": payload[:60]},
            ],
            "metadata": {payload: payload},
        }
        response = api.post(f"/api/datasets/{dataset_id}/examples", json={**record, "note": payload})
        assert response.status_code == 201, response.text
        example_ids.append(response.json()["id"])
    # Invalid examples whose problems may quote the offending values back.
    for payload in PAYLOADS[45:]:
        record = {
            "messages": [
                {"role": payload, "content": payload},
                {"role": "user", "content": [payload]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": payload, "type": payload, "function": {"name": payload, "arguments": payload}}
                    ],
                },
            ],
            "tools": [{"type": "function", "function": {"name": payload, "parameters": payload}}],
            payload: payload,
        }
        response = api.post(f"/api/datasets/{dataset_id}/examples", json={**record, "note": payload})
        assert response.status_code == 201, response.text
        example_ids.append(response.json()["id"])
    ids["example_id"] = example_ids[-1]
    ids["example_ids"] = example_ids
    return ids


def _seed_job(engine, dataset_id: int) -> dict:
    """A finished job whose suffix, metadata, error, events, checkpoint and model names are payloads."""
    with Session(engine) as s:
        job = Job(
            model="tiny-llama",
            status=JobStatus.succeeded.value,
            suffix=PAYLOADS[0][:64],
            metadata_={p[:60]: p[:500] for p in PAYLOADS[:16]},
            dataset_id=dataset_id,
            error={"code": PAYLOADS[1], "message": PAYLOADS[2], "param": PAYLOADS[3]},
            hyperparameters={"n_epochs": 1, "note": PAYLOADS[4]},
            fine_tuned_model=f"ft:tiny:{PAYLOADS[5]}",
            started_at=utcnow(),
            finished_at=utcnow(),
            trained_tokens=10,
        )
        failed = Job(
            model=PAYLOADS[6][:200],
            status=JobStatus.failed.value,
            suffix=PAYLOADS[7][:64],
            error={"code": "x", "message": PAYLOADS[8], "param": None},
            finished_at=utcnow(),
        )
        s.add(job)
        s.add(failed)
        s.commit()
        for step, payload in enumerate(PAYLOADS, start=1):
            s.add(JobEvent(job_id=job.id, message=payload, level="error" if step % 3 == 0 else "info"))
            s.add(
                JobEvent(
                    job_id=job.id,
                    type="metrics",
                    message=payload,
                    data={"step": step, "train_loss": 1.0 / step, "label": payload, payload[:40]: 1},
                )
            )
        s.add(
            Checkpoint(
                job_id=job.id,
                step_number=3,
                fine_tuned_model_checkpoint=f"ft:tiny:{PAYLOADS[9]}:ckpt-3",
                metrics={"step": 3, PAYLOADS[10][:40]: 1.0},
            )
        )
        s.add(TunedModel(id=f"ft:tiny-llama:{PAYLOADS[11][:60]}:{job.id}", job_id=job.id, base_model="tiny-llama"))
        conversation = Conversation(
            title=PAYLOADS[12],
            models=[PAYLOADS[13]],
            params={"system": PAYLOADS[14]},
            messages=[
                {"role": "user", "content": PAYLOADS[15]},
                {"role": "assistant", "content": PAYLOADS[16], "model": PAYLOADS[17]},
            ],
        )
        s.add(conversation)
        s.commit()
        return {"job_id": job.id, "model_id": f"ft:tiny:{PAYLOADS[5]}", "conversation_id": conversation.id}


class Site:
    """One seeded app shared by the module's tests (seeding takes a few seconds)."""

    def __init__(self, app, client: TestClient, ids: dict):
        self.app, self.client, self.ids = app, client, ids


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Every kind of user text filled with payloads, through the same services and routes the app uses."""
    settings = make_settings(tmp_path_factory.mktemp("xss") / "data")
    upgrade(settings)
    app = create_app(settings)
    with (
        TestClient(app, headers={"Authorization": f"Bearer {API_KEY}"}) as api,
        TestClient(app, raise_server_exceptions=False) as client,
    ):
        client.headers["X-CSRF-Token"] = csrf_token(client)
        ids = _seed_datasets(api)
        ids.update(_seed_job(app.state.engine, ids["dataset_id"]))
        # File names: a dashboard import and /v1 uploads, each named after payloads.
        bad_lines = "\n".join(PAYLOADS[:20]).encode()
        imported = client.post(
            f"/datasets/{ids['dataset_id']}/import",
            files={"file": (PAYLOADS[2] + ".jsonl", bad_lines, "application/jsonl")},
        )
        assert imported.status_code < 500
        ids["import_page"] = imported.text
        found = re.search(r"/imports/([0-9a-f]{16})/rejected", imported.text)
        ids["import_id"] = found.group(1) if found else "0" * 16
        for payload in PAYLOADS[20:30]:
            response = api.post(
                "/v1/files",
                data={"purpose": "fine-tune"},
                files={"file": (payload + ".jsonl", bad_lines, "application/jsonl")},
            )
            assert response.status_code < 500, response.text
            if response.status_code == 200:
                ids["file_id"] = response.json()["id"]
        yield Site(app, client, ids)


def _pages(app, ids: dict) -> list[str]:
    """Every dashboard GET route with its ids filled in from the seeded rows (new routes join by themselves)."""
    urls = []
    for case in all_cases(app):
        if case.method != "GET" or case.url.startswith(("/api", "/v1", "/static", "/docs", "/redoc", "/openapi")):
            continue
        url = re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: quote(str(ids.get(m.group(1), "1")), safe=""), case.template)
        urls.append(url)
    return urls


def _assert_escaped(client: TestClient, url: str, problems: list[str]) -> None:
    response = client.get(url, follow_redirects=False)
    if response.status_code >= 500:
        problems.append(f"{url}: server error {response.status_code}")
        return
    kind = response.headers.get("content-type", "")
    if "text/html" in kind:
        found = injections(response.text)
    elif "text/event-stream" in kind:
        found = injections(sse_data(response.text))
    else:
        found = []  # downloads and JSON are not rendered as pages (nosniff is checked elsewhere)
    problems.extend(f"{url}: {item}" for item in found[:5])


def test_every_dashboard_page_shows_stored_payloads_escaped(site):
    app, client, seeded = site.app, site.client, site.ids
    problems: list[str] = []
    pages = _pages(app, seeded)
    assert any("/jobs/" in p for p in pages) and any("/datasets/" in p for p in pages)
    # The same pages again for a dataset whose own name and description are payloads.
    pages += _pages(app, {**seeded, "dataset_id": 1})
    for url in pages:
        _assert_escaped(client, url, problems)
    for example_id in seeded["example_ids"][::7]:
        _assert_escaped(client, f"/examples/{example_id}", problems)
    for offset in (0, 50):
        _assert_escaped(client, f"/datasets/{seeded['dataset_id']}?offset={offset}", problems)
        _assert_escaped(client, f"/datasets/{seeded['dataset_id']}?valid=invalid&offset={offset}", problems)
    assert problems == []


def test_the_import_result_shows_rejected_lines_and_the_file_name_escaped(site):
    assert injections(site.ids["import_page"]) == []


def test_htmx_fragments_show_stored_payloads_escaped(site):
    app, client, seeded = site.app, site.client, site.ids
    problems: list[str] = []
    client.headers["HX-Request"] = "true"
    try:
        for url in _pages(app, seeded):
            _assert_escaped(client, url, problems)
    finally:
        del client.headers["HX-Request"]
    assert problems == []


def test_the_live_event_stream_shows_event_messages_escaped(site):
    response = site.client.get(f"/jobs/{site.ids['job_id']}/events/stream")
    assert response.headers["content-type"].startswith("text/event-stream")
    html = sse_data(response.text)
    assert "tbxss" in html  # the payloads were really streamed, escaped
    assert injections(html) == []


def test_payloads_reflected_through_the_url_come_back_escaped(site):
    problems: list[str] = []
    pages = _pages(site.app, site.ids)
    for number, payload in enumerate(PAYLOADS):
        query = urlencode(dict.fromkeys(FILTER_PARAMS, payload))
        for url in pages[number % 4 :: 4]:  # each page gets a quarter of the payloads: all pages, all payloads
            _assert_escaped(site.client, f"{url}?{query}", problems)
        _assert_escaped(site.client, "/" + quote(payload, safe=""), problems)  # the 404 page names the path
        _assert_escaped(site.client, f"/datasets/{quote(payload, safe='')}", problems)
    assert problems == []


def test_example_saves_echo_payloads_escaped(site):
    # Live validation and a refused save render the submitted text back into the editor.
    client, example_id = site.client, site.ids["example_ids"][-1]
    problems = []
    for payload in PAYLOADS[::5]:
        for kind in ("text", "json"):
            form = {
                "msg_role": [payload, "user"],
                "msg_content": [payload, payload],
                "msg_kind": [kind, kind],
                "msg_more": [payload, ""],
                "msg_tool_calls": [payload, ""],
                "msg_weight": ["", ""],
                "tools": payload,
                "extra": payload,
                "note": payload,
                "version": "1",
                "split": payload,
            }
            for url in (f"/examples/{example_id}/check", f"/examples/{example_id}"):
                response = client.post(url, data=form, headers={"HX-Request": "true"})
                if response.status_code >= 500:
                    problems.append(f"POST {url}: {response.status_code}")
                elif "text/html" in response.headers.get("content-type", ""):
                    problems.extend(f"POST {url}: {f}" for f in injections(response.text)[:3])
    assert problems == []


def test_api_and_downloads_are_never_served_as_html(site):
    dataset_id, client = site.ids["dataset_id"], site.client
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    for response in (
        client.get(f"/api/datasets/{dataset_id}/examples", headers=bearer),
        client.get(f"/api/datasets/{dataset_id}/export", headers=bearer),
        client.get(f"/datasets/{dataset_id}/export?only_valid=false"),
        client.get("/v1/files", headers=bearer),
    ):
        assert response.status_code == 200
        assert "text/html" not in response.headers["content-type"]
        assert response.headers["x-content-type-options"] == "nosniff"
