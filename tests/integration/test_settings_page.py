"""The settings page: OpenAI key shown only masked, the maintenance switch, API keys shown once and revocable."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.settings import store as app_settings
from app.settings.maintenance import maintenance_enabled


def test_openai_key_is_stored_and_shown_back_only_as_its_last_four_characters(client, session):
    secret = "sk-test-abcdefghijklmnop-WXYZ"
    response = client.post(
        "/settings/openai", data={"openai_api_key": secret, "openai_base_url": "http://127.0.0.1:9/v1"}
    )
    assert response.status_code == 200  # followed the redirect back to the page
    assert app_settings.get_value(session, app_settings.OPENAI_API_KEY) == secret
    html = response.text
    assert secret not in html and "…WXYZ" in html and "http://127.0.0.1:9/v1" in html


def test_blank_key_field_keeps_the_stored_key_and_clear_forgets_it(client, session):
    client.post("/settings/openai", data={"openai_api_key": "sk-keep-me-1234"})
    client.post("/settings/openai", data={"openai_api_key": ""})
    assert app_settings.get_value(session, app_settings.OPENAI_API_KEY) == "sk-keep-me-1234"
    client.post("/settings/openai", data={"clear_key": "on"})
    session.expire_all()
    assert app_settings.get_value(session, app_settings.OPENAI_API_KEY) is None


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
