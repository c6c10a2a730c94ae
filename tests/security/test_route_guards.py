"""Every route, found by enumerating the app: CSRF on the dashboard, bearer key on /api and /v1, login, headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.tables.migrate import upgrade
from app.web.security import BROWSER_COOKIE, SECURITY_HEADERS
from tests.conftest import API_KEY, csrf_token, make_settings
from tests.security.routes import (
    HUGE,
    all_cases,
    bearer_routes,
    dashboard_pages,
    dashboard_state_changing,
    huge_int_cases,
)
from tests.support.builders import make_dataset

PASSWORD = "route-guard password 1"


def _refusals(client: TestClient, cases, expected: int, **kwargs) -> list[str]:
    """The cases whose response status differs from `expected`, described for the failure message."""
    wrong = []
    for case in cases:
        response = client.request(case.method, case.url, follow_redirects=False, **kwargs)
        if response.status_code != expected:
            wrong.append(f"{case} -> {response.status_code} {response.text[:120]!r}")
    return wrong


@pytest.fixture
def browser(app):
    """A browser that visited the dashboard (it holds the CSRF cookie) but sends no token: a forged request."""
    with TestClient(app) as client:
        client.get("/healthz")
        assert client.cookies.get(BROWSER_COOKIE)
        yield client


def test_the_route_enumeration_finds_the_state_changing_and_api_routes(app):
    assert any(c.template == "/login" and c.method == "POST" for c in dashboard_state_changing(app))
    assert len(bearer_routes(app)) >= 1


def test_every_state_changing_dashboard_route_refuses_a_request_without_the_csrf_token(app, browser):
    cases = dashboard_state_changing(app)
    assert _refusals(browser, cases, 403) == []


def test_every_state_changing_dashboard_route_refuses_a_form_post_without_the_token_field(app, browser):
    # Another site's <form> can post any field it likes, but it cannot read the token to copy it.
    cases = dashboard_state_changing(app)
    assert _refusals(browser, cases, 403, data={"name": "forged", "password": "x"}) == []


def test_every_state_changing_dashboard_route_refuses_an_htmx_request_with_a_wrong_token(app, browser):
    cases = dashboard_state_changing(app)
    headers = {"X-CSRF-Token": "wrong-token-" + "x" * 30, "HX-Request": "true"}
    assert _refusals(browser, cases, 403, headers=headers) == []


def test_a_token_without_its_cookie_is_refused_everywhere(app):
    with TestClient(app) as client:
        headers = {"X-CSRF-Token": "a" * 43}
        assert _refusals(client, dashboard_state_changing(app), 403, headers=headers) == []


def test_the_csrf_refusal_says_why_in_plain_words(browser):
    response = browser.post("/logout")
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_every_api_and_v1_route_refuses_a_request_without_a_bearer_key(app):
    with TestClient(app) as client:
        assert _refusals(client, bearer_routes(app), 401) == []


def test_every_api_and_v1_route_refuses_a_wrong_bearer_key(app):
    with TestClient(app, headers={"Authorization": "Bearer tb-not-the-key"}) as client:
        assert _refusals(client, bearer_routes(app), 401) == []


def test_a_dashboard_session_and_csrf_token_do_not_open_the_api(app, client):
    assert _refusals(client, bearer_routes(app), 401) == []


def test_api_refusals_use_each_api_s_error_shape(app):
    with TestClient(app) as client:
        v1 = client.get("/v1/models")
        assert v1.status_code == 401
        assert v1.json()["error"]["code"] == "missing_api_key"
        api_case = next(c for c in bearer_routes(app) if c.url.startswith("/api"))
        body = client.request(api_case.method, api_case.url).json()
        assert body["code"] == "missing_api_key" and "API key" in body["detail"]


def test_the_right_bearer_key_passes_the_guard(api):
    assert api.get("/api/datasets").status_code == 200


@pytest.fixture
def protected_app(tmp_path):
    settings = make_settings(tmp_path / "data", password=PASSWORD)
    upgrade(settings)
    return create_app(settings)


def test_every_dashboard_page_needs_a_login_when_a_password_is_set(protected_app):
    guarded = [c for c in dashboard_pages(protected_app) if c.api_route]
    wrong = []
    with TestClient(protected_app) as client:
        for case in guarded:
            response = client.get(case.url, follow_redirects=False)
            if response.status_code != 303 or not response.headers["location"].startswith("/login"):
                wrong.append(f"{case} -> {response.status_code}")
            htmx = client.get(case.url, headers={"HX-Request": "true"}, follow_redirects=False)
            if htmx.status_code != 401 or htmx.headers.get("hx-redirect") != "/login":
                wrong.append(f"{case} (htmx) -> {htmx.status_code}")
    assert wrong == []


def test_every_state_changing_dashboard_route_needs_a_login_when_a_password_is_set(protected_app):
    cases = [c for c in dashboard_state_changing(protected_app) if c.template not in ("/login",)]
    with TestClient(protected_app) as client:
        client.headers["X-CSRF-Token"] = csrf_token(client)
        assert _refusals(client, cases, 401) == []


def test_the_built_in_api_docs_need_a_login_when_a_password_is_set(protected_app):
    builtin = [c for c in dashboard_pages(protected_app) if not c.api_route]
    with TestClient(protected_app) as client:
        open_pages = [str(c) for c in builtin if client.get(c.url, follow_redirects=False).status_code == 200]
    assert open_pages == []


def _get_every_route(app):
    """(case, response) for every GET route with dummy ids, as a key-holding browser would see them."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(app, headers=headers, raise_server_exceptions=False) as client:
        for case in [c for c in all_cases(app) if c.method == "GET"]:
            if case.template.endswith("/stream"):
                continue  # live streams are read in the XSS test, where a finished job ends them
            yield case, client.get(case.url, follow_redirects=False)
        yield "GET /static/app.js", client.get("/static/app.js")


def test_every_response_carries_the_security_headers(app):
    expected = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
    missing = [
        f"{case}: {name}={response.headers.get(name)!r}"
        for case, response in _get_every_route(app)
        if response.status_code < 500
        for name, value in expected.items()
        if response.headers.get(name) != value
    ]
    assert missing == []


def test_no_get_route_answers_an_unknown_id_with_a_server_error(app):
    errors = [f"{case} -> {r.status_code}" for case, r in _get_every_route(app) if r.status_code >= 500]
    assert errors == []


def test_no_route_answers_an_id_or_offset_beyond_the_database_s_integers_with_a_server_error(app, client, session):
    # Dataset 1 and its example 1 exist, so an offset or cursor reaches the query instead of stopping at a 404.
    make_dataset(session, n_train=1)
    cases = huge_int_cases(app)
    assert {name for _, name in cases} >= {"dataset_id", "example_id", "offset", "after_seq", "key_id"}
    client.headers["Authorization"] = f"Bearer {API_KEY}"
    client.headers["X-CSRF-Token"] = csrf_token(client)  # so dashboard forms reach their validation, not the guard
    wrong = []
    for case, name in cases:
        try:
            response = client.request(case.method, case.url, follow_redirects=False)
        except Exception as exc:  # the browser client re-raises what the server raised
            wrong.append(f"{case} with {name}={HUGE[:4]}… -> {type(exc).__name__}: {exc}")
            continue
        if not 400 <= response.status_code < 500:
            wrong.append(f"{case} with {name}={HUGE[:4]}… -> {response.status_code}")
        elif case.url.startswith("/api/") and response.json().get("param") not in (f"path.{name}", f"query.{name}"):
            wrong.append(f"{case}: the refusal does not name {name}: {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)


def test_a_server_error_response_still_carries_the_security_headers(app):
    def boom():
        raise RuntimeError("boom")

    app.add_api_route("/boom-for-header-test", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom-for-header-test")
    assert response.status_code == 500
    assert response.headers.get("x-frame-options") == "DENY"
    assert "content-security-policy" in response.headers


def test_the_content_security_policy_allows_only_the_app_s_own_scripts(client):
    policy = client.get("/").headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-eval" not in policy and "unsafe-inline" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
