"""Secrets (the OpenAI keys and the dashboard password) never appear in pages, API answers, exports, errors or logs.

One real server (uvicorn with its access log on, at DEBUG) is set up with a password and an OpenAI key from the
environment setting; a logged-in browser-like client saves a second key on the settings page, and a worker runs
an OpenAI job against a local stand-in with those keys, so the secrets really travel through the code.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select

from app.main import create_app
from app.tables import Job, JobStatus
from app.tables.migrate import upgrade
from app.worker.loop import Worker
from tests.conftest import API_KEY, LiveServer, csrf_token, free_port, make_settings
from tests.security.routes import all_cases
from tests.support.fake_openai import FakeOpenAIState, make_app

ENV_KEY = "sk-envQx7Rr2kSecretVw9Lp4Zt"
PAGE_KEY = "sk-pageJm3Tt8NSecretBd5Kq1Y"
PASSWORD = "Hunter2-Secret-Ox8Fw3-Pass"
SECRETS = {
    "OpenAI key from the environment": ENV_KEY,
    "OpenAI key from the settings page": PAGE_KEY,
    "password": PASSWORD,
}
# The settings page may show a key's last 4 characters; any 8 characters in a row give more away than that.
WINDOW = 8


def leaks(text: str) -> list[str]:
    """Which secrets (or 8-character runs of them) the text contains."""
    found = []
    for name, secret in SECRETS.items():
        for start in range(len(secret) - WINDOW + 1):
            piece = secret[start : start + WINDOW]
            if piece in text:
                found.append(f"{name} ({piece!r})")
                break
    return found


class LogCollector(logging.Handler):
    """Every log record of every logger, formatted with its arguments and any traceback."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def live_server_with_access_log(app) -> LiveServer:
    """A LiveServer whose uvicorn logs everything (access log included) through the root logger."""
    server = LiveServer(app, free_port())
    config = uvicorn.Config(
        app, host="127.0.0.1", port=server.port, log_config=None, log_level="debug", access_log=True, lifespan="on"
    )
    server.server = uvicorn.Server(config)
    server.thread = threading.Thread(target=server.server.run, daemon=True)
    return server


class Site:
    """The running server, a logged-in dashboard client, a bearer client, and what setting up produced."""

    def __init__(
        self, app, dashboard: httpx.Client, api: httpx.Client, ids: dict, setup_texts: list[str], logs: LogCollector
    ):
        self.app, self.dashboard, self.api, self.ids = app, dashboard, api, ids
        self.setup_texts, self.logs = setup_texts, logs


def _log_in(client: httpx.Client) -> list[str]:
    """Log in like a browser (a wrong password first); returns the bodies seen."""
    client.headers["X-CSRF-Token"] = csrf_token(client)
    seen = [client.get("/login").text]
    wrong = client.post("/login", data={"password": PASSWORD[:-1], "next": "/"})
    assert wrong.status_code == 401
    seen += [wrong.text, str(wrong.headers)]
    right = client.post("/login", data={"password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert right.status_code == 303, right.text
    seen += [right.text, str(right.headers)]
    client.headers["X-CSRF-Token"] = csrf_token(client)  # logging in gave the browser a new id, so a new token
    return seen


def _run_openai_job(app, ids: dict) -> None:
    """Launch an OpenAI job and let a worker run it against the stand-in, which refuses these keys."""
    settings, engine = app.state.settings, app.state.engine
    with Session(engine) as session:
        job_id = session.exec(select(Job.id).where(Job.provider == "openai")).one()
    worker = Worker(
        settings,
        engine,
        providers=["openai"],
        provider_options={"openai": {"poll_seconds": 0.01, "retry_seconds": 0.01, "max_retries": 0}},
    )
    assert worker.step()
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job.status == JobStatus.failed and job.error["code"] == "invalid_api_key", job.error
    ids["job_id"] = job_id


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    logs = LogCollector()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    uvicorn_loggers = {name: logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    propagate = {name: logger.propagate for name, logger in uvicorn_loggers.items()}
    fake_openai = LiveServer(make_app(FakeOpenAIState()), free_port())
    try:
        # The stand-in's address comes from the environment setting, as the environment's key does: the settings
        # page refuses to point that key at another address.
        settings = make_settings(
            tmp_path_factory.mktemp("secrets") / "data",
            password=PASSWORD,
            openai_api_key=ENV_KEY,
            openai_base_url=fake_openai.url + "/v1",
            log_level="debug",
        )
        upgrade(settings)
        app = create_app(settings)
        server = live_server_with_access_log(app)
        # Another server's uvicorn logging config may have stopped these loggers from reaching the root logger.
        for logger in uvicorn_loggers.values():
            logger.propagate = True
        with (
            fake_openai,
            server,
            httpx.Client(base_url=server.url) as dashboard,
            httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}) as api,
        ):
            texts = _log_in(dashboard)
            saved = dashboard.post(
                "/settings/openai",
                data={"openai_api_key": PAGE_KEY, "openai_base_url": fake_openai.url + "/v1"},
                follow_redirects=True,
            )
            assert saved.status_code == 200 and "saved" in str(saved.url), saved.text
            texts.append(saved.text)
            ids = _seed(api, dashboard, texts)
            _run_openai_job(app, ids)
            yield Site(app, dashboard, api, ids, texts, logs)
    finally:
        root.removeHandler(logs)
        root.setLevel(old_level)
        for name, logger in uvicorn_loggers.items():
            logger.propagate = propagate[name]


def _seed(api: httpx.Client, dashboard: httpx.Client, texts: list[str]) -> dict:
    """A dataset with examples, an import with a rejected line, a /v1 file and an OpenAI job."""
    dataset = api.post("/api/datasets", json={"name": "support bot", "description": "secrets test"}).json()
    for i in range(10):
        record = {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"{i}?"},
                {"role": "assistant", "content": f"{i}."},
            ]
        }
        assert api.post(f"/api/datasets/{dataset['id']}/examples", json=record).status_code == 201
    lines = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\nnot json\n'
    imported = dashboard.post(f"/datasets/{dataset['id']}/import", files={"file": ("more.jsonl", lines)})
    texts.append(imported.text)
    found = re.search(r"/imports/([0-9a-f]{16})/rejected", imported.text)
    assert found, imported.text
    uploaded = api.post("/v1/files", data={"purpose": "fine-tune"}, files={"file": ("train.jsonl", lines[:-9])})
    assert uploaded.status_code == 200, uploaded.text
    job = api.post(
        "/api/jobs",
        json={
            "dataset_id": dataset["id"],
            "provider": "openai",
            "model": "gpt-4o-mini-2024-07-18",
            "accept_warnings": True,
        },
    )
    assert job.status_code == 201, job.text
    texts += [json.dumps(dataset), uploaded.text, job.text]
    return {
        "dataset_id": dataset["id"],
        "example_id": 1,
        "import_id": found.group(1),
        "file_id": uploaded.json()["id"],
        "model_id": "gpt-4o-mini-2024-07-18",
    }


def _urls(app, ids: dict, api_routes: bool) -> list[str]:
    """Every GET route of the dashboard (or of /api and /v1), ids filled in from the seeded rows."""
    urls = []
    for case in all_cases(app):
        is_api = case.url.startswith(("/api/", "/v1/"))
        if case.method != "GET" or is_api != api_routes:
            continue
        urls.append(
            re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: quote(str(ids.get(m.group(1), "1")), safe=""), case.template)
        )
    return urls


def _fetch_all(client: httpx.Client, urls: list[str], **headers) -> dict[str, str]:
    """Each URL's status line, headers and body."""
    seen = {}
    for url in urls:
        response = client.get(url, headers=headers, follow_redirects=False)
        assert response.status_code < 500, f"{url}: {response.status_code} {response.text[:300]}"
        seen[url] = f"{response.status_code} {response.headers}\n{response.text}"
    return seen


def _assert_no_leaks(texts: dict[str, str]) -> None:
    problems = [f"{where}: {found}" for where, text in texts.items() if (found := leaks(text))]
    assert problems == []


def test_the_leak_checker_catches_a_secret_or_a_slice_of_it_but_not_the_last_four_characters():
    assert leaks(f"key: {PAGE_KEY}") and leaks(f"pw={PASSWORD[3:12]}") and leaks(ENV_KEY[:8] + "***")
    assert leaks(f"…{PAGE_KEY[-4:]} …{ENV_KEY[-4:]}") == []


def test_setting_up_the_secrets_and_logging_in_shows_none_of_them(site):
    _assert_no_leaks({f"setup step {i}": text for i, text in enumerate(site.setup_texts)})


def test_no_dashboard_page_or_fragment_shows_a_secret(site, caplog):
    caplog.set_level(logging.DEBUG)
    urls = _urls(site.app, site.ids, api_routes=False)
    assert "/settings" in urls and any(u.startswith("/jobs/") for u in urls)
    pages = _fetch_all(site.dashboard, urls)
    fragments = _fetch_all(site.dashboard, urls, **{"HX-Request": "true"})
    settings_page = site.dashboard.get("/settings").text
    assert f"…{PAGE_KEY[-4:]}" in settings_page or f"…{ENV_KEY[-4:]}" in settings_page  # a key is set, masked
    _assert_no_leaks(pages | {f"{url} (htmx)": text for url, text in fragments.items()})
    _assert_no_leaks({"logs": caplog.text})


def test_no_api_or_v1_answer_shows_a_secret(site, caplog):
    caplog.set_level(logging.DEBUG)
    urls = _urls(site.app, site.ids, api_routes=True)
    assert any(u.startswith("/v1/") for u in urls) and any(u.startswith("/api/") for u in urls)
    answers = _fetch_all(site.api, urls)
    job = site.api.get(f"/v1/fine_tuning/jobs/{site.ids['job_id']}").json()
    assert job["status"] == "failed" and "API key" in job["error"]["message"]  # the failure is explained...
    _assert_no_leaks(answers | {"logs": caplog.text})  # ...without quoting the key


def test_no_dataset_export_contains_a_secret(site, caplog):
    caplog.set_level(logging.DEBUG)
    dataset_id = site.ids["dataset_id"]
    exports = {}
    for split in ("all", "train", "validation"):
        for only_valid in ("true", "false"):
            url = f"/datasets/{dataset_id}/export?split={split}&only_valid={only_valid}"
            exports[url] = site.dashboard.get(url).text
            api_url = f"/api/datasets/{dataset_id}/export?split={split}&only_valid={only_valid}"
            exports[api_url] = site.api.get(api_url).text
    assert any('"messages"' in text for text in exports.values())
    exports["file content"] = site.api.get(f"/v1/files/{site.ids['file_id']}/content").text
    exports["job results"] = site.dashboard.get(f"/jobs/{site.ids['job_id']}/results.csv").text
    _assert_no_leaks(exports | {"logs": caplog.text})


def test_error_answers_never_quote_a_secret_even_when_the_request_carried_it(site, caplog):
    caplog.set_level(logging.DEBUG)
    d, a = site.dashboard, site.api
    assert d.cookies.get("tb_session"), "the dashboard client is logged in"
    answers = {
        # A key pasted with a typo (a space) is refused without being echoed back into the form or the message.
        "bad key form": d.post(
            "/settings/openai", data={"openai_api_key": f"{PAGE_KEY} {ENV_KEY}", "openai_base_url": ""}
        ),
        "bad key form (htmx)": d.post(
            "/settings/openai",
            headers={"HX-Request": "true"},
            data={"openai_api_key": f"x {PASSWORD}", "openai_base_url": "ftp://x"},
        ),
        "wrong password": d.post("/login", data={"password": f"{PASSWORD}!", "next": "/"}),
        "a secret as the /v1 bearer key": d.get("/v1/models", headers={"Authorization": f"Bearer {ENV_KEY}"}),
        "a secret as the /api bearer key": d.get("/api/datasets", headers={"Authorization": f"Bearer {PASSWORD}"}),
        "an OpenAI job that cannot start": a.post(
            "/api/jobs", json={"dataset_id": site.ids["dataset_id"], "provider": "openai", "model": "no-such-model"}
        ),
        "an unknown page": d.get("/datasets/999999"),
    }
    texts = {}
    for name, response in answers.items():
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
        texts[name] = f"{response.status_code} {response.headers}\n{response.text}"
    _assert_no_leaks(texts | {"logs": caplog.text})


def test_nothing_logged_during_setup_or_the_tests_contains_a_secret(site, capfd):
    assert site.logs.lines, "the log collector saw nothing: the check would be empty"
    assert any("uvicorn.access" in line for line in site.logs.lines)  # the access log was really captured
    assert any("openai" in line.lower() or "httpx" in line for line in site.logs.lines)
    out, err = capfd.readouterr()
    _assert_no_leaks({"logs": "\n".join(site.logs.lines), "stdout": out, "stderr": err})
