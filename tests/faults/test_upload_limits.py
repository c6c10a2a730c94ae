"""Hostile uploads against a real server: two million bad lines, a trickling client, a stalled one, kill -9.

Issue #15: a 4 MB file of 2,000,000 bad lines grew the server from 761 MB to 2.3 GB and came back as a 215 MB
response; trickling an upload for a minute held SQLite's write lock (every other write failed); kill -9 during a
/v1/files upload left the file `uploaded` forever and an empty dataset behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from app.main import create_app
from app.tables import UploadedFile
from app.tables.db import make_engine
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
GOOD = json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
MB = 1024 * 1024


class Server:
    """`tuneboard serve` in its own process group, as people run it."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port, self.url = data_dir, port, f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNEBOARD_", "OPENAI_"))}
        env.update(
            TUNEBOARD_DATA_DIR=str(self.data_dir),
            TUNEBOARD_API_KEY=API_KEY,
            TUNEBOARD_SECRET_KEY="s" * 40,
            TUNEBOARD_LOG_LEVEL="warning",
            PYTHONPATH=str(ROOT),
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / f"serve-{time.monotonic_ns()}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--no-worker", "--port", str(self.port)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        # No readiness event crosses the process boundary: poll /healthz until it answers.
        wait_for(self._answers, timeout=60, what="the server to start")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError("the server process exited")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """kill -9 of the whole server."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def status_kb(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status, in kB (VmRSS: now; VmHWM: the peak)."""
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        if text.startswith(field + ":"):
            return int(text.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def multipart(data: bytes, filename: str = "d.jsonl", boundary: str = "tbBoundary7") -> tuple[bytes, bytes, str]:
    """(head, tail, content type) of a multipart body holding `data` as the field `file`."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def open_upload(port: int, path: str, head: bytes, total: int, content_type: str) -> socket.socket:
    """A raw connection that has sent a POST's headers and the start of its body (the rest is up to the test)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(20)  # the old code never answers a stalled upload: fail instead of hanging
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(request.encode() + head)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the response on a raw connection (Connection: close: read to the end)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    raw = b"".join(chunks)
    headers, _, body = raw.partition(b"\r\n\r\n")
    status = int(headers.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in headers.lower():
        body = _unchunk(body)
    return status, json.loads(body)


def _unchunk(body: bytes) -> bytes:
    out = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if not size:
            break
        out.append(rest[:size])
        body = rest[size + 2 :]
    return b"".join(out)


def test_two_million_rejected_lines_keep_the_server_small_and_the_answer_short(tmp_path):
    server = Server(tmp_path / "data", free_port()).start()
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=600) as http:
            dataset_id = http.post("/api/datasets", json={"name": "bad lines"}).json()["id"]
            url = f"/api/datasets/{dataset_id}/import"
            # A first small import loads everything an import uses, so the baseline is a warm server.
            assert http.post(url, files={"file": ("w.jsonl", (GOOD + "\nx\n").encode())}).status_code == 200
            baseline = status_kb(server.pid, "VmRSS")
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
            response = http.post(url, files={"file": ("bad.jsonl", b"x\n" * 2_000_000)})
            growth_mb = (status_kb(server.pid, "VmHWM") - baseline) / 1024
            assert response.status_code == 200, response.text[:300]
            assert len(response.content) < 1_000_000
            result = response.json()
            assert (result["imported"], result["rejected_count"]) == (0, 2_000_000)
            assert growth_mb < 100, f"the server grew by {growth_mb:.0f} MB"
            # The downloadable list has every one of them, with its number and why.
            number = 0
            with http.stream("GET", result["rejected_url"]) as listing:
                assert listing.status_code == 200
                for text in listing.iter_lines():
                    entry = json.loads(text)
                    number += 1
                    assert entry["line"] == number and entry["code"] == "invalid_json", entry
            assert number == 2_000_000
    finally:
        server.stop()


def test_a_trickling_upload_blocks_no_other_write_and_a_stalled_one_is_cut_off(tmp_path):
    # Writers wait up to 5 s for SQLite's lock: under the old code a write queued behind the trickling upload
    # waited that long and failed with 503.
    settings = make_settings(tmp_path / "data", sqlite_busy_timeout_ms=5000, upload_idle_timeout_seconds=2.0)
    upgrade(settings)
    with (
        LiveServer(create_app(settings), free_port()) as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as http,
    ):
        dataset_id = http.post("/api/datasets", json={"name": "slow"}).json()["id"]
        path = f"/api/datasets/{dataset_id}/import"
        lines = (GOOD + "\n").encode() * 300
        head, tail, content_type = multipart(lines)
        sock = open_upload(server.port, path, head, len(head) + len(lines) + len(tail), content_type)
        pieces = [lines[i : i + 600] for i in range(0, len(lines), 600)] + [tail]
        halfway, written = threading.Event(), threading.Event()

        def trickle() -> None:
            for n, piece in enumerate(pieces):
                sock.sendall(piece)
                if n == len(pieces) // 2:
                    halfway.set()
                    written.wait(30)  # the rest only once the other write is done: the upload is still open
                time.sleep(0.02)  # a slow client: the pause is the behaviour under test, not a wait for an event

        sender = threading.Thread(target=trickle)
        sender.start()
        assert halfway.wait(30)
        started = time.monotonic()
        other = http.post("/api/datasets", json={"name": "written meanwhile"})
        took = time.monotonic() - started
        written.set()
        sender.join()
        status, result = read_response(sock)
        sock.close()
        assert other.status_code == 201, other.text
        assert took < 4, f"a write waited {took:.1f} s behind a trickling upload"
        assert (status, result["imported"], result["rejected_count"]) == (200, 300, 0)

        # A client that stops sending is cut off after upload_idle_timeout_seconds, with a clear message.
        stalled = open_upload(server.port, path, head + lines[:1000], len(head) + len(lines) + len(tail), content_type)
        started = time.monotonic()
        status, body = read_response(stalled)
        waited = time.monotonic() - started
        stalled.close()
        assert status == 408 and "upload_idle_timeout_seconds" in body["detail"], body
        assert 1.5 < waited < 15
        assert http.get(f"/api/datasets/{dataset_id}").json()["counts"]["examples"] == 300


def test_kill_9_during_a_v1_files_upload_then_restart_ends_the_file_as_error_and_no_dataset(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    server = Server(data_dir, port).start()
    engine = make_engine(make_settings(data_dir))
    big = (GOOD + "\n").encode() * 200_000  # long enough an import to be killed in the middle of it
    failures: list[BaseException] = []

    def upload() -> None:
        try:
            httpx.post(
                f"{server.url}/v1/files",
                headers=AUTH,
                data={"purpose": "fine-tune"},
                files={"file": ("train.jsonl", big)},
                timeout=120,
            )
        except httpx.HTTPError as exc:  # the server dies under it
            failures.append(exc)

    def importing() -> UploadedFile | None:
        with Session(engine) as session:
            return session.exec(select(UploadedFile).where(UploadedFile.status == "uploaded")).first()

    try:
        # A second upload still arriving when the server dies (its body half sent).
        head, tail, content_type = multipart(big[:1000], "half.jsonl")
        half = open_upload(port, "/v1/files", head + big[:500], len(head) + 1000 + len(tail), content_type)
        client = threading.Thread(target=upload)
        client.start()
        stuck = wait_for(importing, timeout=120, what="the file's import to start")
        server.kill()
        client.join(timeout=60)
        half.close()
        assert failures, "the upload finished before the kill: make the file bigger"
        with Session(engine) as session:
            assert session.get(UploadedFile, stuck.id).status == "uploaded"  # what kill -9 leaves behind
    finally:
        server.stop()
    restarted = Server(data_dir, port).start()
    try:
        with httpx.Client(base_url=restarted.url, headers=AUTH, timeout=30) as http:
            files = http.get("/v1/files").json()["data"]
            assert [(f["id"], f["status"]) for f in files] == [(stuck.id, "error")]
            assert "server stopped" in files[0]["status_details"]
            assert http.get("/api/datasets").json() == []
            # The file can be uploaded again and imports whole.
            again = http.post(
                "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("train.jsonl", big[:100_000])}
            )
            assert again.json()["status"] == "processed"
        # Nothing of the killed imports is left in the spool folder (its files are unlinked as they are made).
        assert list((data_dir / "tmp").glob("*")) == [] if (data_dir / "tmp").exists() else True
    finally:
        restarted.stop()
        engine.dispose()
