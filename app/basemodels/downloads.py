"""Downloads from the Hugging Face Hub running in the background: one child process each (fetch_main.py), its
progress kept here for the page and /api to read, cancel by stopping the child.

A download fetches into data_dir/models/.downloads/<name>/; a cancelled or failed one leaves its partial files
there, and starting the same name again resumes them (Range requests). Only a verified download becomes a model.
The ModelDownloads object lives as long as the app (app.state.model_downloads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from app.basemodels.hub import HubPlan
from app.basemodels.registry import check_new_name, install_download
from app.config import Settings
from app.errors import Conflict, DomainError, NotFound

ROOT = Path(__file__).resolve().parent.parent.parent
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass
class FileProgress:
    """Bytes fetched of one file."""

    name: str
    done: int
    total: int


@dataclass
class Download:
    """One download: status is running | done | failed | cancelled; message says what happens or went wrong."""

    name: str
    repo: str
    revision: str
    commit: str
    status: str = "running"
    message: str = "Starting…"
    files: list[FileProgress] = field(default_factory=list)

    @property
    def done_bytes(self) -> int:
        """Bytes fetched so far, all files together."""
        return sum(f.done for f in self.files)

    @property
    def total_bytes(self) -> int:
        """Bytes to fetch, all files together."""
        return sum(f.total for f in self.files)

    @property
    def is_terminal(self) -> bool:
        """Whether it has ended (done, failed or cancelled)."""
        return self.status != "running"


def partial_dir(settings: Settings, name: str) -> Path:
    """Where a download of `name` fetches its files before it is verified and installed."""
    return settings.data_dir / "models" / ".downloads" / name


class ModelDownloads:
    """The downloads of this server process, by model name."""

    def __init__(self, settings: Settings, command: list[str] | None = None) -> None:
        self.settings = settings
        self.command = command or [sys.executable, "-m", "app.basemodels.fetch_main"]
        self._lock = threading.Lock()
        self._downloads: dict[str, Download] = {}
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._cancelled: set[str] = set()

    def start(self, plan: HubPlan, name: str, token: str | None) -> Download:
        """Start fetching `plan` as the model `name` (Conflict while one of that name runs)."""
        with self._lock:
            running = self._downloads.get(name)
            if running is not None and not running.is_terminal:
                raise Conflict(f"{name} is downloading already.", param="name")
            check_new_name(self.settings, name)
            download = Download(name, plan.repo, plan.revision, plan.commit)
            download.files = [FileProgress(f.name, 0, f.size) for f in plan.files]
            self._downloads[name] = download
            self._cancelled.discard(name)
        thread = threading.Thread(target=self._run, args=(download, plan, token), name=f"download-{name}", daemon=True)
        thread.start()
        return download

    def get(self, name: str) -> Download:
        """One download (NotFound when this server has none of that name)."""
        with self._lock:
            if name not in self._downloads:
                raise NotFound(f"No download of {name!r} on this server.", code="download_not_found")
            return self._downloads[name]

    def list(self) -> list[Download]:
        """Every download this server started, the newest last."""
        with self._lock:
            return list(self._downloads.values())

    def cancel(self, name: str) -> Download:
        """Stop a running download; its partial files stay, so starting it again resumes."""
        download = self.get(name)
        with self._lock:
            self._cancelled.add(name)
            child = self._children.get(name)
        if child is not None:
            child.terminate()
        return download

    def close(self) -> None:
        """Stop every running download (at shutdown)."""
        for download in self.list():
            if not download.is_terminal:
                self.cancel(download.name)

    def _run(self, download: Download, plan: HubPlan, token: str | None) -> None:
        folder = partial_dir(self.settings, download.name)
        folder.mkdir(parents=True, exist_ok=True)
        spec = {
            "repo": plan.repo,
            "commit": plan.commit,
            "endpoint": self.settings.hf_endpoint,
            "token": token,
            "folder": str(folder),
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256, "blob_id": f.blob_id} for f in plan.files],
        }
        env = {k: v for k, v in os.environ.items() if k not in _OFFLINE_VARIABLES}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        log = folder / "fetch.log"  # the child's stderr (huggingface_hub's retry warnings, a traceback)
        try:
            with open(log, "wb") as stderr:
                child = subprocess.Popen(
                    self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT, env=env
                )
        except OSError as exc:
            self._finish(download, "failed", f"The download could not start: {exc}")
            return
        with self._lock:
            self._children[download.name] = child
            cancelled_early = download.name in self._cancelled
        if cancelled_early:
            child.terminate()
        with child.stdout or open(os.devnull, "rb"):
            error = self._relay(download, child, json.dumps(spec).encode())
        child.wait()
        with self._lock:
            self._children.pop(download.name, None)
            cancelled = download.name in self._cancelled
        if cancelled:
            self._finish(download, "cancelled", "Cancelled. The files fetched so far are kept: add it again to resume.")
        elif error or child.returncode != 0:
            stopped = f"The download stopped (exit status {child.returncode}); its log is {log}."
            self._finish(download, "failed", error or stopped)
        else:
            self._install(download, plan, folder)

    def _relay(self, download: Download, child: subprocess.Popen[bytes], spec: bytes) -> str | None:
        """Pass the plan in, read progress lines until the child ends; the child's error words, if any."""
        assert child.stdin is not None and child.stdout is not None  # started with PIPEs
        try:
            child.stdin.write(spec)
            child.stdin.close()
        except BrokenPipeError:
            return None
        by_name = {f.name: f for f in download.files}
        error = None
        for raw in child.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                if "file" in line and line["file"] in by_name:
                    by_name[line["file"]].done = int(line["done"])
                    download.message = f"Fetching {line['file']}…"
                elif "verifying" in line:
                    download.message = f"Verifying the checksum of {line['verifying']}…"
                elif "error" in line:
                    error = str(line["error"])
        return error

    def _install(self, download: Download, plan: HubPlan, folder: Path) -> None:
        source: dict[str, object] = {"kind": "hf", "repo": plan.repo, "revision": plan.revision, "commit": plan.commit}
        files: list[dict[str, object]] = [
            {"name": f.name, "size": f.size, "sha256": f.sha256, "blob_id": f.blob_id} for f in plan.files
        ]
        try:
            install_download(self.settings, download.name, folder, source, files)
        except DomainError as exc:
            self._finish(download, "failed", exc.message)
            return
        except OSError as exc:  # the disk filled up meanwhile, or the folder cannot be moved
            self._finish(download, "failed", f"Installing the download failed: {exc}")
            return
        self._finish(download, "done", f"Downloaded and verified {len(plan.files)} files.")

    def _finish(self, download: Download, status: str, message: str) -> None:
        with self._lock:
            download.status = status
            download.message = message
