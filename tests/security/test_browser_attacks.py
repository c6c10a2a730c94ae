"""Attacks from another page in the victim's browser: DNS rebinding (a foreign Host), forged or planted CSRF
tokens, requests from another origin. Each was possible before and is refused now."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.settings.maintenance import maintenance_enabled
from app.tables.migrate import upgrade
from app.web.forwarding import NetworkPolicy, is_loopback
from tests.conftest import csrf_token, make_settings
from tests.security.routes import dashboard_state_changing

# The form that turns the maintenance switch on (off on a new installation): what an attacker would want.
TURN_ON = {"enabled": "on"}


# -- the Host check ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path", [("GET", "/"), ("GET", "/healthz"), ("GET", "/login"), ("POST", "/login")])
def test_a_foreign_host_name_gets_neither_a_page_nor_a_cookie(app, method, path):
    with TestClient(app, base_url="http://attacker.example") as client:
        response = client.request(method, path)
    assert response.status_code == 400
    assert "set-cookie" not in response.headers
    assert "TUNEBOARD_ALLOWED_HOSTS" in response.text
    assert response.headers["x-frame-options"] == "DENY"


def test_dns_rebinding_cannot_change_a_setting(app, session):
    # The rebinding page is served from attacker.example, so the browser sends that name and that origin.
    with TestClient(app, base_url="http://attacker.example:8000") as client:
        page = client.get("/settings")
        changed = client.post("/settings/destructive", data=TURN_ON, headers={"Origin": "http://attacker.example:8000"})
    assert page.status_code == 400 and changed.status_code == 400
    assert maintenance_enabled(session) is False


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST", "testserver", "127.0.0.1"]
)
def test_the_loopback_names_and_listed_hosts_are_answered(app, host):
    with TestClient(app) as client:
        assert client.get("/healthz", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["", "localhost.attacker.example", "127.0.0.1.nip.io", "evil:8000:1", "a b"])
def test_look_alike_and_malformed_host_names_are_refused(app, host):
    with TestClient(app) as client:
        assert client.get("/healthz", headers={"Host": host}).status_code == 400


def test_a_configured_host_name_is_answered(tmp_path):
    settings = make_settings(tmp_path / "data", allowed_hosts=["tuneboard.example.com"])
    upgrade(settings)
    with TestClient(create_app(settings), base_url="http://tuneboard.example.com") as client:
        assert client.get("/").status_code == 200


def test_allowed_hosts_read_from_the_environment_as_a_comma_separated_list(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEBOARD_ALLOWED_HOSTS", "a.example, b.example")
    monkeypatch.setenv("TUNEBOARD_TRUSTED_PROXIES", "10.0.0.1,10.1.0.0/16")
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.allowed_hosts == ["a.example", "b.example"]
    assert settings.trusted_proxies == ["10.0.0.1", "10.1.0.0/16"]


# -- the CSRF token ------------------------------------------------------------------------------------------
def test_the_browser_id_cookie_is_httponly_and_is_not_the_token(app):
    with TestClient(app) as client:
        response = client.get("/")
        cookie = response.headers["set-cookie"]
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', response.text).group(1)
    assert cookie.startswith("tb_sid=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert token not in cookie
    assert len(token) == 43


@pytest.mark.parametrize("cookie", ["tb_csrf", "tb_sid"])
@pytest.mark.parametrize("value", ["a", "x" * 43, "A" * 4000])
def test_a_self_chosen_cookie_and_token_pair_is_refused(app, session, cookie, value):
    # `curl -b tb_csrf=a -d csrf_token=a` used to pass: the cookie was the token, in any length.
    with TestClient(app, cookies={cookie: value}) as client:
        response = client.post("/settings/destructive", data={**TURN_ON, "csrf_token": value})
        by_header = client.post("/settings/destructive", data=TURN_ON, headers={"X-CSRF-Token": value})
    assert response.status_code == 403 and by_header.status_code == 403
    assert maintenance_enabled(session) is False


@pytest.mark.parametrize("token", ["", "short", "a" * 42 + "!", "a" * 44, "ä" * 43, "a" * 100_000])
def test_tokens_of_the_wrong_shape_are_refused_without_a_server_error(client, token):
    response = client.post("/settings/destructive", data={"csrf_token": token}, headers={"X-CSRF-Token": ""})
    assert response.status_code == 403


def test_a_token_belongs_to_its_browser_only(app):
    # Another port of the same host can plant cookies, but a token it fetched for itself is bound to its own id.
    with TestClient(app) as attacker, TestClient(app) as victim:
        attackers_token = csrf_token(attacker)
        csrf_token(victim)
        refused = victim.post("/settings/destructive", data=TURN_ON, headers={"X-CSRF-Token": attackers_token})
        assert refused.status_code == 403
        planted_cookie = attacker.cookies["tb_sid"]
    # Planting the attacker's own id cookie in the victim's browser does not help: the post comes from its page.
    with TestClient(app, cookies={"tb_sid": planted_cookie}) as victim:
        planted = victim.post(
            "/settings/destructive",
            data=TURN_ON,
            headers={"X-CSRF-Token": attackers_token, "Origin": "http://testserver:8081"},
        )
    assert planted.status_code == 403


def test_a_forged_browser_id_signature_is_replaced_not_trusted(app):
    with TestClient(app) as client:
        csrf_token(client)
        real = client.cookies["tb_sid"]
    forged = real.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAA"
    with TestClient(app, cookies={"tb_sid": forged}) as client:
        response = client.get("/")
    assert "tb_sid=" in response.headers["set-cookie"] and forged not in response.headers["set-cookie"]


# -- the same-origin check -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "http://testserver:8081"},  # another port of the same host
        {"Origin": "https://testserver"},  # another scheme
        {"Origin": "null"},
        {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-origin"},  # a browser always sends Origin with a POST: this one hid it
    ],
)
def test_a_state_changing_request_from_another_origin_is_refused_even_with_the_token(client, session, headers):
    response = client.post("/settings/destructive", data=TURN_ON, headers=headers)
    assert response.status_code == 403
    assert "another site" in response.text
    assert maintenance_enabled(session) is False


@pytest.mark.parametrize(
    "headers",
    [
        {},  # not a browser (curl, a script): the token alone
        {"Origin": "http://testserver"},
        {"Origin": "http://testserver:80", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "HTTP://TESTSERVER"},
    ],
)
def test_the_same_origin_with_the_token_is_accepted(client, session, headers):
    response = client.post("/settings/destructive", data=TURN_ON, headers=headers)
    assert response.status_code == 200
    assert maintenance_enabled(session) is True


def test_every_state_changing_dashboard_route_refuses_a_foreign_origin(app, client):
    wrong = []
    for case in dashboard_state_changing(app):
        response = client.request(
            case.method, case.url, headers={"Origin": "http://attacker.example"}, follow_redirects=False
        )
        if response.status_code != 403 or "another site" not in response.text:
            wrong.append(f"{case} -> {response.status_code}")
    assert wrong == []


def test_a_dual_stack_server_sees_ipv4_loopback_and_its_own_addresses_as_such():
    # Bound to '::', a connection from 127.0.0.1 arrives as ::ffff:127.0.0.1.
    network = NetworkPolicy.from_settings(make_settings(Path("unused"), host="::", trusted_proxies=["10.0.0.0/8"]))
    assert is_loopback("::ffff:127.0.0.1") and not is_loopback("::ffff:192.0.2.1")
    assert network.host_allowed("192.0.2.1:8000", "::ffff:192.0.2.1")
    assert not network.host_allowed("attacker.example:8000", "::ffff:192.0.2.1")
    assert network.trusts("::ffff:10.1.2.3") and not network.trusts("192.0.2.1")
