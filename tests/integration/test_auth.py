"""Password protection: login pages, signed session cookies, rate limiting, and refusing to bind without one."""

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import make_settings

PASSWORD = "correct horse battery"


@pytest.fixture
def protected(tmp_path):
    settings = make_settings(tmp_path / "data", password=PASSWORD, login_attempts_per_minute=3)
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        client.get("/login")
        client.headers["X-CSRF-Token"] = client.cookies.get("tb_csrf")
        yield client


def test_pages_redirect_to_login_when_a_password_is_set(protected):
    response = protected.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_right_password_sets_an_httponly_lax_session_cookie(protected):
    response = protected.post("/login", data={"password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "tb_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert protected.get("/", follow_redirects=False).status_code == 200


def test_wrong_password_is_refused_and_attempts_are_rate_limited(protected):
    for _ in range(3):
        assert protected.post("/login", data={"password": "nope"}).status_code == 401
    blocked = protected.post("/login", data={"password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.text


def test_forged_session_cookie_is_not_accepted(protected):
    protected.cookies.set("tb_session", "eyJ1c2VyIjoiYWRtaW4ifQ.forged.signature")
    assert protected.get("/", follow_redirects=False).status_code == 303


def test_login_never_redirects_to_another_site(protected):
    response = protected.post("/login", data={"password": PASSWORD, "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_password_never_appears_in_the_login_page(protected):
    protected.post("/login", data={"password": PASSWORD})
    assert PASSWORD not in protected.get("/login").text


def test_serving_on_a_network_interface_without_password_refuses_to_start(tmp_path):
    env = {"TUNEBOARD_DATA_DIR": str(tmp_path / "data"), "TUNEBOARD_HOST": "0.0.0.0", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 2
    assert "password" in result.stderr.lower()
