"""A stand-in Hugging Face Hub on 127.0.0.1: serves model repos built from local directories, the way
huggingface_hub reads the real one.

- GET /api/models/{owner}/{name}/revision/{rev}   the repo's sha and siblings (size, blobId, lfs.sha256)
- HEAD/GET /{owner}/{name}/resolve/{rev}/{file}    X-Repo-Commit, ETag (git blob id) or X-Linked-Etag (LFS sha256),
                                                   Content-Length; GET honours `Range: bytes=N-` with 206
Knobs for tests: `token` (the repo answers 401 without it), `drop_once` (file names whose first GET sends half the
body and closes the connection), `corrupt` (file names served with other bytes of the same size), `hold` (file
names whose GET sends half the body and then waits for `release` before going on). Every request is logged.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin")


@dataclass
class Logged:
    """One request the hub answered."""

    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class FakeHub:
    """Repos by id ("owner/name") → their files, and the test knobs."""

    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    token: str | None = None
    drop_once: set[str] = field(default_factory=set)
    corrupt: set[str] = field(default_factory=set)
    hold: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    log: list[Logged] = field(default_factory=list)
    url: str = ""

    def add_repo(self, repo: str, directory: Path, extra: dict[str, bytes] | None = None) -> None:
        """Serve every file of `directory` (and `extra`) as the repo `repo`."""
        files = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
        self.repos[repo] = {**files, **(extra or {})}

    def commit(self, repo: str) -> str:
        """The repo's (made-up but stable) 40-hex commit sha."""
        return hashlib.sha1(repo.encode()).hexdigest()

    def gets(self, name: str) -> list[Logged]:
        """The GET requests for one file."""
        return [r for r in self.log if r.method == "GET" and r.path.endswith("/" + name)]


def blob_id(data: bytes) -> str:
    """Git's blob id of some bytes."""
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def _sibling(name: str, data: bytes) -> dict:
    entry: dict = {"rfilename": name, "size": len(data), "blobId": blob_id(data)}
    if name.endswith(LFS_SUFFIXES):
        entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet: the hub keeps its own log
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _send(self, status: int, headers: dict[str, str], data: bytes = b"", body: bool = True) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _serve(self, body: bool) -> None:
        hub = self.hub
        path = unquote(urlsplit(self.path).path)
        hub.log.append(Logged(self.command, path, self.headers.get("Range"), self.headers.get("Authorization")))
        parts = path.strip("/").split("/")
        if parts[:1] == ["api"] and len(parts) >= 6 and parts[1] == "models" and parts[4] == "revision":
            repo = f"{parts[2]}/{parts[3]}"
            if not self._allowed(repo, body):
                return
            files = hub.repos[repo]
            info = {
                "id": repo,
                "sha": hub.commit(repo),
                "gated": "manual" if hub.token else False,
                "siblings": [_sibling(n, d) for n, d in files.items()],
            }
            self._send(200, {"Content-Type": "application/json"}, json.dumps(info).encode(), body)
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, name = f"{parts[0]}/{parts[1]}", "/".join(parts[4:])
            if not self._allowed(repo, body) or name not in hub.repos[repo]:
                if repo in hub.repos and name not in hub.repos[repo]:
                    self._send(404, {"X-Error-Code": "EntryNotFound"}, b"{}", body)
                return
            self._file(repo, name, body)
            return
        self._send(404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "not found"}', body)

    def _allowed(self, repo: str, body: bool) -> bool:
        if repo not in self.hub.repos:
            self._send(404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}', body)
            return False
        if self.hub.token and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            self._send(401, {"X-Error-Code": "GatedRepo"}, b'{"error": "Access to this model is restricted"}', body)
            return False
        return True

    def _file(self, repo: str, name: str, body: bool) -> None:
        hub = self.hub
        real = hub.repos[repo][name]
        data = bytes(b ^ 0xFF for b in real) if name in hub.corrupt else real
        headers = {"X-Repo-Commit": hub.commit(repo), "Accept-Ranges": "bytes"}
        entry = _sibling(name, real)
        if "lfs" in entry:
            headers["X-Linked-Etag"] = f'"{entry["lfs"]["sha256"]}"'
            headers["ETag"] = f'"{entry["blobId"]}"'
        else:
            headers["ETag"] = f'"{entry["blobId"]}"'
        start = 0
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and body:
            start = int(wanted[len("bytes=") :].split("-")[0])
        part = data[start:]
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if not body:
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        cut = name in hub.drop_once or name in hub.hold
        self.send_response(206 if start else 200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if not cut or start:
            self.wfile.write(part)
            return
        self.wfile.write(part[: len(part) // 2])
        self.wfile.flush()
        if name in hub.drop_once:
            hub.drop_once.discard(name)
        else:
            hub.hold.discard(name)
            hub.held.set()
            hub.release.wait(30)
        self.close_connection = True  # the client sees a body cut short


class HubServer:
    """The stand-in hub served on a free 127.0.0.1 port by a thread, as a context manager."""

    def __init__(self, hub: FakeHub) -> None:
        handler = type("Handler", (_Handler,), {"hub": hub})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.hub = hub
        hub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-hub", daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self.hub.release.set()
        self.server.shutdown()
        self.server.server_close()
