"""The settings page: OpenAI key shown only masked, the maintenance switch, API keys shown once and revocable."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import store as app_settings
from app.settings.maintenance import maintenance_enabled
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, browser_client, make_settings

SECRET_KEY = "s" * 40  # make_settings' installation secret key


def stored_key(session) -> str | None:
    """The OpenAI key saved on the page, decrypted."""
    session.expire_all()
    return app_settings.get_secret(session, app_settings.OPENAI_API_KEY, SECRET_KEY)


def test_openai_key_is_stored_and_shown_back_only_as_its_last_four_characters(client, session):
    secret = "sk-test-abcdefghijklmnop-WXYZ"
    response = client.post(
        "/settings/openai", data={"openai_api_key": secret, "openai_base_url": "http://127.0.0.1:9/v1"}
    )
    assert response.status_code == 200  # followed the redirect back to the page
    assert stored_key(session) == secret
    assert secret not in str(app_settings.get_value(session, app_settings.OPENAI_API_KEY))  # encrypted at rest
    html = response.text
    assert secret not in html and "…WXYZ" in html and "http://127.0.0.1:9/v1" in html


def test_blank_key_field_keeps_the_stored_key_and_clear_forgets_it(client, session):
    client.post("/settings/openai", data={"openai_api_key": "sk-keep-me-1234"})
    client.post("/settings/openai", data={"openai_api_key": ""})
    assert stored_key(session) == "sk-keep-me-1234"
    client.post("/settings/openai", data={"clear_key": "on"})
    assert stored_key(session) is None


def test_bad_base_url_is_refused_with_a_clear_message(client):
    response = client.post("/settings/openai", data={"openai_base_url": "ftp://example"})
    assert response.status_code == 400 and "http://" in response.text


def test_maintenance_switch_turns_destructive_actions_off_and_on(client, session):
    client.post("/settings/destructive", data={})
    assert maintenance_enabled(session) is False
    assert 'name="enabled" value="on" checked' not in client.get("/settings").text
    client.post("/settings/destructive", data={"enabled": "on"})
    session.expire_all()
    assert maintenance_enabled(session) is True


def test_created_api_key_is_shown_once_works_and_stops_working_when_revoked(app, client):
    html = client.post("/settings/api-keys", data={"name": "laptop <script>"}).text
    key = html.split('id="new-api-key">', 1)[1].split("<", 1)[0]
    assert key.startswith("tb-")
    assert "laptop &lt;script&gt;" in html
    page = client.get("/settings").text
    assert key not in page and key[:10] in page

    @app.get("/v1/_probe")
    def probe():
        return {"ok": True}

    with TestClient(app) as bare:
        assert bare.get("/v1/_probe", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        key_id = page.split("/settings/api-keys/", 1)[1].split("/", 1)[0]
        client.post(f"/settings/api-keys/{key_id}/revoke", headers={"HX-Request": "true"})
        assert bare.get("/v1/_probe", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_settings_forms_without_csrf_token_are_refused(app):
    with TestClient(app) as bare:
        bare.get("/settings")
        assert bare.post("/settings/destructive", data={}).status_code == 403


# -- the base URL and the key --------------------------------------------------------------------------------
def test_a_new_base_url_without_the_key_is_refused_and_changes_nothing(client, session):
    client.post("/settings/openai", data={"openai_api_key": "sk-original-key-1234", "openai_base_url": ""})
    response = client.post("/settings/openai", data={"openai_base_url": "https://collector.example/v1"})
    assert response.status_code == 400
    assert "Enter the API key again" in response.text
    session.expire_all()
    assert app_settings.get_value(session, app_settings.OPENAI_BASE_URL) is None
    assert stored_key(session) == "sk-original-key-1234"


def test_a_new_base_url_with_the_key_entered_again_is_saved(client, session):
    client.post("/settings/openai", data={"openai_api_key": "sk-original-key-1234", "openai_base_url": ""})
    response = client.post(
        "/settings/openai", data={"openai_api_key": "sk-other-host-key-99", "openai_base_url": "http://127.0.0.1:9/v1"}
    )
    assert response.status_code == 200
    session.expire_all()
    assert app_settings.get_value(session, app_settings.OPENAI_BASE_URL) == "http://127.0.0.1:9/v1"
    assert stored_key(session) == "sk-other-host-key-99"


def test_a_new_base_url_that_forgets_the_stored_key_is_saved(client, session):
    client.post("/settings/openai", data={"openai_api_key": "sk-original-key-1234", "openai_base_url": ""})
    response = client.post("/settings/openai", data={"openai_base_url": "http://127.0.0.1:9/v1", "clear_key": "on"})
    assert response.status_code == 200
    assert stored_key(session) is None


def test_the_same_base_url_keeps_the_stored_key_without_asking(client, session):
    url = "http://127.0.0.1:9/v1"
    client.post("/settings/openai", data={"openai_api_key": "sk-original-key-1234", "openai_base_url": url})
    assert client.post("/settings/openai", data={"openai_base_url": url + "/"}).status_code == 200
    assert stored_key(session) == "sk-original-key-1234"


@pytest.mark.parametrize("new_key", ["", "sk-typed-on-the-page-1"])
def test_the_environment_s_key_is_never_pointed_at_another_address(tmp_path, new_key):
    settings = make_settings(tmp_path / "data", openai_api_key="sk-from-the-environment-1")
    upgrade(settings)
    client = browser_client(create_app(settings))
    try:
        response = client.post(
            "/settings/openai", data={"openai_api_key": new_key, "openai_base_url": "https://collector.example/v1"}
        )
    finally:
        client.__exit__(None, None, None)
    assert response.status_code == 400
    assert "OPENAI_BASE_URL" in response.text


# -- API keys across processes -------------------------------------------------------------------------------
def test_a_key_revoked_in_one_process_stops_working_in_another_within_seconds(app, client):
    html = client.post("/settings/api-keys", data={"name": "shared"}).text
    revoked = html.split('id="new-api-key">', 1)[1].split("<", 1)[0]
    busy = client.post("/settings/api-keys", data={"name": "busy"}).text.split('id="new-api-key">', 1)[1]
    busy = busy.split("<", 1)[0]
    other = create_app(app.state.settings)  # a second web process on the same database
    now = [1000.0]
    other.state.auth.clock = lambda: now[0]

    @other.get("/v1/_probe")
    def probe():
        return {"ok": True}

    def status(key: str) -> int:
        return bare.get("/v1/_probe", headers={"Authorization": f"Bearer {key}"}).status_code

    with TestClient(other) as bare:
        assert status(revoked) == 200 and status(busy) == 200
        page = client.get("/settings").text
        key_id = re.search(r"<td>shared</td>.*?/settings/api-keys/(\d+)/revoke", page, re.DOTALL).group(1)
        assert client.post(f"/settings/api-keys/{key_id}/revoke", headers={"HX-Request": "true"}).status_code == 200
        # The busy key keeps being used on the other process; that must not keep the revoked one alive.
        for _ in range(3):
            now[0] += 1.0
            assert status(busy) == 200
        assert status(revoked) == 401
        assert status(busy) == 200
        assert status(API_KEY) == 200


def test_favicon_is_served_and_linked_from_every_page(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in icon.content
    assert client.get("/static/favicon.svg").status_code == 200
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get("/settings").text


def test_a_key_created_without_a_name_is_named_after_its_creation_time(client):
    html = client.post("/settings/api-keys", data={"name": "  "}).text
    assert "unnamed" not in html
    assert re.search(r"<td>key created \d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", html)


def test_a_new_key_comes_with_a_copy_button_for_app_js(client):
    html = client.post("/settings/api-keys", data={"name": "ci"}).text
    assert 'data-copy="#new-api-key"' in html
    assert "data-copy" in client.get("/static/app.js").text
