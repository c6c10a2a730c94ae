"""The wheel carries everything the server reads besides its code: installed into a fresh virtual environment and
run from outside the repository, `tuneboard migrate` builds a database and `tuneboard serve` serves pages
(packaged templates), static files and /healthz.

The new environment sees the dependencies already installed for the tests (a .pth file listing this venv's
site-packages), but not the repository's editable install: a .pth line that is a bare path adds that directory
to sys.path without running the .pth files inside it, so `app` can only come from the wheel.
"""

from __future__ import annotations

import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import threading
import urllib.request
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from app.tables.migrate import alembic_config
from tests.conftest import free_port, make_settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its combined output, or a failure that shows it."""
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of the repository, built from a copy so that the checkout gets no build/ or *.egg-info."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "source"
    shutil.copytree(ROOT / "app", source / "app", ignore=SKIP)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", wheels, source, cwd=tmp_path)
    (built,) = wheels.glob("tuneboard-*.whl")
    return built


def clean_env(data_dir: Path) -> dict[str, str]:
    """This environment without anything that points at the repository or configures another Tuneboard."""
    settings_names = {"PYTHONPATH", "PYTHONHOME", "DATABASE_URL", "DATA_DIR", "HOST", "PORT", "OPENAI_API_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in settings_names and not k.startswith("TUNEBOARD_")}
    env.update(TUNEBOARD_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    return env


class ServerLog:
    """The server's stderr, read line by line in a thread, so that the test can wait for a line to appear."""

    def __init__(self, server: subprocess.Popen):
        self.server = server
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        for line in self.server.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str) -> None:
        """Return once a line contains `text`; fail if the server exits or stays silent too long first."""
        while True:
            try:
                line = self.lines.get(timeout=STARTUP_SECONDS)
            except queue.Empty:
                pytest.fail("the server did not start:\n" + "".join(self.seen))
            if line is None:
                pytest.fail(f"the server exited ({self.server.wait()}):\n" + "".join(self.seen))
            self.seen.append(line)
            if text in line:
                return

    def close(self) -> None:
        """Stop the server and its reader."""
        self.server.terminate()
        self.server.wait(timeout=15)
        self.reader.join(timeout=15)
        self.server.stderr.close()


def get(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("content-type", ""), response.read()


def test_the_wheel_holds_every_file_of_the_package(wheel):
    files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    missing = files - set(zipfile.ZipFile(wheel).namelist())
    assert not missing, f"not in the wheel: {sorted(missing)}"
    for needed in ("migrations/alembic.ini", "migrations/script.py.mako", "migrations/env.py", "templates/base.html"):
        assert f"app/{needed}" in files


def test_the_wheel_installed_outside_the_repository_migrates_and_serves_pages(tmp_path, wheel):
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python, tuneboard = venv / "bin" / "python", venv / "bin" / "tuneboard"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    # Installed before the dependencies are made visible, so pip sees no tuneboard there to keep or replace.
    run(*pip, "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path)
    site_packages = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path).strip()
    )
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site_packages / "tuneboard_test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = clean_env(outside / "data")
    where = run(
        python,
        "-c",
        "import app, app.web.rendering as r; print(app.__file__); print(r.TEMPLATES)",
        cwd=outside,
        env=env,
    ).splitlines()
    assert all(Path(path).is_relative_to(site_packages) for path in where), where
    packaged = site_packages / "app"

    assert "Database is up to date" in run(tuneboard, "migrate", cwd=outside, env=env)
    head = ScriptDirectory.from_config(alembic_config(make_settings(tmp_path / "unused"))).get_current_head()
    with closing(sqlite3.connect(outside / "data" / "tuneboard.db")) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]

    port = free_port()
    server = subprocess.Popen(
        [str(tuneboard), "serve", "--port", str(port)],
        cwd=outside,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = ServerLog(server)
    try:
        log.wait_for("Uvicorn running on")
        base = f"http://127.0.0.1:{port}"

        assert get(f"{base}/healthz")[0] == 200
        status, kind, body = get(f"{base}/datasets")
        html = body.decode()
        assert status == 200 and kind.startswith("text/html")
        assert '<link rel="stylesheet" href="/static/app.css">' in html and "</html>" in html
        status, kind, body = get(f"{base}/static/app.css")
        assert status == 200 and kind.startswith("text/css")
        assert body == (packaged / "static" / "app.css").read_bytes()
    finally:
        log.close()
