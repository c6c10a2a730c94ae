"""The walking skeleton: health, security headers, CSRF and API keys hold from the first commit."""

from tests.conftest import API_KEY, csrf_token


def test_healthz_answers_ok_when_database_is_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_pages_carry_security_headers(client):
    response = client.get("/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"]


def test_home_page_links_vendored_htmx_not_a_cdn(client):
    html = client.get("/").text
    assert "/static/vendor/htmx-2." in html
    assert "https://" not in html.split("<body>")[0]
    assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200


def test_api_refuses_missing_and_wrong_keys(app):
    from fastapi.testclient import TestClient

    @app.get("/v1/_probe")
    def probe():
        return {"ok": True}

    with TestClient(app) as c:
        assert c.get("/v1/_probe").status_code == 401
        body = c.get("/v1/_probe", headers={"Authorization": "Bearer nope"}).json()
        assert body["error"]["code"] == "invalid_api_key"
        assert body["error"]["type"] == "invalid_request_error"
        assert c.get("/v1/_probe", headers={"Authorization": f"Bearer {API_KEY}"}).json() == {"ok": True}


def test_state_changing_page_request_without_csrf_token_is_refused(app):
    from fastapi.testclient import TestClient

    @app.post("/_probe")
    def probe():
        return {"ok": True}

    with TestClient(app) as c:
        token = csrf_token(c)
        assert c.post("/_probe").status_code == 403
        assert c.post("/_probe", headers={"X-CSRF-Token": token}).json() == {"ok": True}
        assert c.post("/_probe", data={"csrf_token": token}).json() == {"ok": True}


def test_unknown_api_paths_answer_401_before_404_without_a_key(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        assert c.get("/v1/no-such-thing").status_code == 401
        assert c.get("/v1/no-such-thing", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 404
