"""Password protection: login pages, signed session cookies that can be ended, the login throttle, forwarded
headers from trusted proxies only, and refusing to serve the network without a good password."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.main import create_app
from app.settings.auth import store_password
from app.tables.db import make_engine
from app.tables.migrate import upgrade
from tests.conftest import LiveServer, csrf_token, free_port, make_settings

ROOT = Path(__file__).resolve().parents[2]

PASSWORD = "correct horse battery"


class RecordedDelays:
    """Stands in for the throttle's sleep and clock: records each delay, waits for nothing, time stands still."""

    def __init__(self):
        self.delays: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)

    def install(self, app) -> RecordedDelays:
        app.state.login_throttle.sleep = self.sleep
        app.state.login_throttle.clock = lambda: 1000.0
        return self


def _protected_app(tmp_path, **overrides):
    settings = make_settings(tmp_path / "data", password=PASSWORD, login_attempts_per_minute=3, **overrides)
    upgrade(settings)
    return create_app(settings)


@pytest.fixture
def protected_app(tmp_path):
    return _protected_app(tmp_path)


@pytest.fixture
def protected(protected_app):
    with TestClient(protected_app) as client:
        client.headers["X-CSRF-Token"] = csrf_token(client)
        yield client


def _log_in(client, password: str = PASSWORD):
    response = client.post("/login", data={"password": password, "next": "/"}, follow_redirects=False)
    client.headers["X-CSRF-Token"] = csrf_token(client)  # a login gives the browser a new id and token
    return response


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


def test_forged_session_cookie_is_not_accepted(protected):
    protected.cookies.set("tb_session", "eyJ1c2VyIjoiYWRtaW4ifQ.forged.signature")
    assert protected.get("/", follow_redirects=False).status_code == 303


def test_login_never_redirects_to_another_site(protected):
    response = protected.post("/login", data={"password": PASSWORD, "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_password_never_appears_in_the_login_page(protected):
    protected.post("/login", data={"password": PASSWORD})
    assert PASSWORD not in protected.get("/login").text


# -- sessions end ---------------------------------------------------------------------------------------------
def test_pages_offer_a_logout_button_once_logged_in(protected):
    assert 'action="/logout"' not in protected.get("/login").text
    _log_in(protected)
    assert 'action="/logout"' in protected.get("/").text


def test_logout_ends_the_session_even_for_a_copy_of_its_cookies(protected_app, protected):
    assert _log_in(protected).status_code == 303
    stolen = dict(protected.cookies)
    assert protected.post("/logout", follow_redirects=False).status_code == 303
    assert protected.get("/", follow_redirects=False).status_code == 303
    with TestClient(protected_app, cookies=stolen) as thief:
        assert thief.get("/", follow_redirects=False).status_code == 303


def test_logout_in_one_process_ends_the_session_in_another(tmp_path):
    first = _protected_app(tmp_path)
    second = create_app(first.state.settings)  # a second web process on the same database
    with TestClient(first) as browser, TestClient(second) as other:
        browser.headers["X-CSRF-Token"] = csrf_token(browser)
        _log_in(browser)
        other.cookies.update(dict(browser.cookies))
        assert other.get("/", follow_redirects=False).status_code == 200
        browser.post("/logout")
        second.state.auth.clock = lambda: 10**9  # the other process's short cache has expired
        assert other.get("/", follow_redirects=False).status_code == 303


def test_a_restart_with_another_password_ends_existing_sessions(tmp_path):
    old = _protected_app(tmp_path)
    with TestClient(old) as browser:
        browser.headers["X-CSRF-Token"] = csrf_token(browser)
        _log_in(browser)
        cookies = dict(browser.cookies)
    same = create_app(old.state.settings)
    with TestClient(same, cookies=cookies) as client:
        assert client.get("/", follow_redirects=False).status_code == 200  # a plain restart keeps the session
    changed = create_app(old.state.settings.model_copy(update={"password": SecretStr("a different long password")}))
    with TestClient(changed, cookies=cookies) as client:
        assert client.get("/", follow_redirects=False).status_code == 303


def test_a_new_stored_password_ends_existing_sessions(tmp_path):
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    store_password(make_engine(settings), "first password, long")
    app = create_app(settings)
    with TestClient(app) as browser:
        browser.headers["X-CSRF-Token"] = csrf_token(browser)
        assert _log_in(browser, "first password, long").status_code == 303
        assert browser.get("/", follow_redirects=False).status_code == 200
        store_password(app.state.engine, "second password, long")
        app.state.auth.clock = lambda: 10**9
        assert browser.get("/", follow_redirects=False).status_code == 303


def test_a_session_cookie_works_only_with_the_browser_id_it_was_issued_with(protected_app, protected):
    _log_in(protected)
    session_only = {"tb_session": protected.cookies["tb_session"]}
    with TestClient(protected_app, cookies=session_only) as other:
        other.get("/login")  # holds a browser id of its own
        assert other.get("/", follow_redirects=False).status_code == 303


def test_logging_in_gives_the_browser_a_new_id_and_token(protected):
    before_id, before_token = protected.cookies["tb_sid"], csrf_token(protected)
    _log_in(protected)
    assert protected.cookies["tb_sid"] != before_id
    assert csrf_token(protected) != before_token
    refused = protected.post("/settings/destructive", data={}, headers={"X-CSRF-Token": before_token})
    assert refused.status_code == 403


# -- the login throttle ---------------------------------------------------------------------------------------
def test_failed_logins_delay_later_attempts_but_the_right_password_still_gets_in(protected_app, protected):
    recorded = RecordedDelays().install(protected_app)
    for _ in range(5):
        assert protected.post("/login", data={"password": "nope"}).status_code == 401
    assert recorded.delays == [1.0, 2.0]  # three free attempts, then a growing delay
    response = protected.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303  # delayed, not refused
    assert recorded.delays == [1.0, 2.0, 4.0]
    assert protected.get("/", follow_redirects=False).status_code == 200


def test_parallel_attempts_from_one_client_are_checked_one_at_a_time(protected_app):
    recorded = RecordedDelays().install(protected_app)

    async def attack() -> list[int]:
        transport = httpx.ASGITransport(app=protected_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/login")
            token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
            attempts = [client.post("/login", data={"password": f"guess {i}", "csrf_token": token}) for i in range(8)]
            return [r.status_code for r in await asyncio.gather(*attempts)]

    assert asyncio.run(attack()) == [401] * 8
    # Each attempt saw every earlier failure: the delays grow as if they had come one after another.
    assert recorded.delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_other_clients_failures_only_slow_the_owner_a_little(tmp_path):
    app = _protected_app(tmp_path, login_global_attempts_per_minute=4, trusted_proxies=["10.0.0.1"])
    recorded = RecordedDelays().install(app)
    with TestClient(app, client=("10.0.0.1", 4000)) as proxy:
        proxy.headers["X-CSRF-Token"] = csrf_token(proxy)
        for i in range(12):
            forwarded = {"X-Forwarded-For": f"198.51.100.{i}"}
            assert proxy.post("/login", data={"password": "nope"}, headers=forwarded).status_code == 401
        recorded.delays.clear()
        owner = proxy.post(
            "/login", data={"password": PASSWORD}, headers={"X-Forwarded-For": "203.0.113.7"}, follow_redirects=False
        )
    assert owner.status_code == 303
    # The global count slows everyone, with a ceiling of a third of the per-client one (30 s / 3).
    assert recorded.delays == [10.0]


def test_rotating_x_forwarded_for_does_not_escape_the_throttle(tmp_path):
    # A real uvicorn: by default it believes X-Forwarded-For from 127.0.0.1 itself. Tuneboard must not.
    app = _protected_app(tmp_path)
    recorded = RecordedDelays().install(app)
    with LiveServer(app, free_port()) as server, httpx.Client(base_url=server.url) as client:
        token = csrf_token(client)
        for i in range(6):
            forwarded = {"X-Forwarded-For": f"192.0.2.{i}", "X-CSRF-Token": token}
            assert client.post("/login", data={"password": "nope"}, headers=forwarded).status_code == 401
    assert recorded.delays == [1.0, 2.0, 4.0]


def test_a_trusted_proxy_s_forwarded_client_and_scheme_are_believed(tmp_path):
    app = _protected_app(tmp_path, trusted_proxies=["10.0.0.0/24"])
    recorded = RecordedDelays().install(app)
    forwarded = {"X-Forwarded-For": "203.0.113.5, 10.0.0.3", "X-Forwarded-Proto": "https"}
    with TestClient(app, client=("10.0.0.1", 4000), headers=forwarded) as proxy:
        page = proxy.get("/login")
        # The browser id cookie is Secure now; the test client talks plain http to the "proxy", so it is handed over.
        assert "; secure" in page.headers["set-cookie"].lower()
        proxy.cookies.set("tb_sid", re.search(r"tb_sid=([^;]+)", page.headers["set-cookie"]).group(1))
        proxy.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
        for _ in range(4):
            proxy.post("/login", data={"password": "nope"})
        assert recorded.delays == [1.0]  # one client (203.0.113.5), through two trusted hops
        # The same origin is https now, as the browser sees it.
        assert (
            proxy.post("/login", data={"password": "nope"}, headers={"Origin": "http://testserver"}).status_code == 403
        )
        login = proxy.post(
            "/login", data={"password": PASSWORD}, headers={"Origin": "https://testserver"}, follow_redirects=False
        )
    assert login.status_code == 303
    cookies = login.headers.get_list("set-cookie")
    assert cookies and all("; secure" in c.lower() for c in cookies)


def test_forwarded_headers_from_anyone_else_are_ignored(tmp_path):
    app = _protected_app(tmp_path, trusted_proxies=["10.0.0.1"])
    spoofed = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
    with TestClient(app, client=("192.0.2.50", 4000), headers=spoofed) as client:
        client.headers["X-CSRF-Token"] = csrf_token(client)
        login = client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
    assert login.status_code == 303
    assert not any("secure" in c.lower() for c in login.headers.get_list("set-cookie"))


# -- serving the network --------------------------------------------------------------------------------------
def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{' '.join(command)} started serving instead of refusing")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _env(tmp_path, **extra: str) -> dict[str, str]:
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    return {"TUNEBOARD_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin", **extra}


def test_serving_on_a_network_interface_without_password_refuses_to_start(tmp_path):
    result = _run([sys.executable, "-m", "app.cli", "serve"], _env(tmp_path, TUNEBOARD_HOST="0.0.0.0"))
    assert result.returncode == 2
    assert "password" in result.stderr.lower()


def test_a_short_password_is_refused_for_a_network_bind(tmp_path):
    env = _env(tmp_path, TUNEBOARD_HOST="0.0.0.0", TUNEBOARD_PASSWORD="hunter2")
    result = _run([sys.executable, "-m", "app.cli", "serve"], env)
    assert result.returncode == 2
    assert "shorter than 12 characters" in result.stderr


@pytest.mark.parametrize("password", [None, "short"])
def test_uvicorn_on_all_interfaces_refuses_to_start_without_a_good_password(tmp_path, password):
    env = _env(tmp_path, **({"TUNEBOARD_PASSWORD": password} if password else {}))
    command = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "0.0.0.0", "--port", str(free_port())]
    result = _run(command, dict(env, PYTHONPATH=str(ROOT)))
    assert result.returncode != 0
    assert "Refusing to serve on 0.0.0.0" in result.stderr


def test_a_request_that_arrived_on_a_network_interface_is_refused_without_a_password(app):
    # However the server was started: the address a connection arrived on is what counts.
    with TestClient(app, base_url="http://192.0.2.10:8000") as client:
        response = client.get("/")
    assert response.status_code == 403
    assert "no dashboard password is set" in response.text
    assert "set-cookie" not in response.headers
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/").status_code == 200


def test_a_request_on_a_network_interface_reaches_the_login_with_a_good_password(protected_app):
    with TestClient(protected_app, base_url="http://192.0.2.10:8000") as client:
        response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
