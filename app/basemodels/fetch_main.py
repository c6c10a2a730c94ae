"""The download child: `python -m app.basemodels.fetch_main` reads a plan as JSON on stdin, fetches its files with
huggingface_hub into a folder and verifies each checksum, printing one JSON object per line on stdout:

    {"file": name, "done": bytes, "total": bytes}     progress (at most every 0.2 s per file, and at its end)
    {"verifying": name}                               hashing a finished file
    {"error": words}                                  the last line of a failed download (exit status 1)
    {"ok": true}                                      everything fetched and verified

The token comes on stdin so that it never shows in a process list or a file. Each file is fetched with
huggingface_hub's http_get (its retries resume a dropped connection with a Range request) into
`.partial/<commit>/<name>`, which a killed child leaves behind and the next child resumes: hf_hub_download itself
(2.x) deletes a failed download's temporary file, so it cannot resume across runs. A separate process because the
engine puts huggingface_hub into offline mode in any process that loaded a model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from huggingface_hub import constants, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers
from huggingface_hub.utils import tqdm as hf_tqdm

_EVERY_SECONDS = 0.2
PARTIAL = ".partial"  # files being fetched, kept across runs (huggingface_hub's own deletes a failed one)
# huggingface_hub writes (and so can resume from) whole chunks only: its 10 MiB default loses up to 10 MiB on a
# dropped connection and reports progress in 10 MiB steps. 64 KiB costs little per GiB (16k Python steps).
_CHUNK_BYTES = 64 * 1024


def emit(**fields: Any) -> None:
    """One progress line on stdout."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def progress_class(name: str, total: int) -> type[hf_tqdm]:
    """A tqdm class that reports bytes done for `name` as JSON lines instead of drawing a bar."""

    class Report(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.done = int(kwargs.get("initial") or 0)
            self.last = 0.0
            emit(file=name, done=self.done, total=total)

        def update(self, n: float | None = 1) -> bool | None:
            self.done += int(n or 0)
            now = time.monotonic()
            if now - self.last >= _EVERY_SECONDS or self.done >= total:
                self.last = now
                emit(file=name, done=self.done, total=total)
            return None

    return Report


def file_digest(path: Path, algorithm: str, git_blob: bool = False) -> str:
    """sha256 of a file, or (git_blob) the git blob id: sha1 of "blob <size>\\0" and the content."""
    digest = hashlib.new(algorithm)
    if git_blob:
        digest.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, entry: dict[str, Any]) -> str | None:
    """Words saying why a fetched file does not match the hub's checksum, or None when it matches."""
    if path.stat().st_size != entry["size"]:
        return f"{entry['name']} has {path.stat().st_size} bytes, the hub says {entry['size']}"
    if entry.get("sha256"):
        if file_digest(path, "sha256") != entry["sha256"]:
            return f"the sha256 of {entry['name']} does not match the hub's"
    elif entry.get("blob_id") and file_digest(path, "sha1", git_blob=True) != entry["blob_id"]:
        return f"the checksum of {entry['name']} does not match the hub's git blob id"
    return None


def fetch_file(plan: dict[str, Any], entry: dict[str, Any], folder: Path) -> Path:
    """Fetch one file into `folder`, resuming its `.partial/<commit>/<name>` from an earlier run with a Range."""
    final = folder / entry["name"]
    if final.is_file() and final.stat().st_size == entry["size"]:
        return final  # fetched by an earlier run; verified again below
    part = folder / PARTIAL / plan["commit"] / entry["name"]
    part.parent.mkdir(parents=True, exist_ok=True)
    url = hf_hub_url(plan["repo"], entry["name"], revision=plan["commit"], endpoint=plan["endpoint"])
    with open(part, "ab") as out:
        http_get(
            url,
            out,
            resume_size=out.tell(),
            headers=build_hf_headers(token=plan.get("token") or False),
            expected_size=entry["size"],
            displayed_filename=entry["name"],
            tqdm_class=progress_class(entry["name"], entry["size"]),
        )
    part.replace(final)
    return final


def fetch(plan: dict[str, Any]) -> str | None:
    """Fetch and verify every file of the plan; words on failure, None on success."""
    folder = Path(plan["folder"])
    for entry in plan["files"]:
        try:
            local = fetch_file(plan, entry, folder)
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (401, 403):
                return f"The hub refused {entry['name']} ({status}): the token does not give access to {plan['repo']}."
            return f"Downloading {entry['name']} failed: {exc}"
        except OSError as exc:
            return f"Downloading {entry['name']} failed: {exc}"
        emit(verifying=entry["name"])
        problem = verify(local, entry)
        if problem:
            local.unlink(missing_ok=True)  # so that trying again fetches it afresh
            return f"Checksum check failed: {problem}. The file was removed; try again."
    shutil.rmtree(folder / PARTIAL, ignore_errors=True)
    return None


def main() -> int:
    """Read the plan from stdin, fetch, report."""
    # SIGTERM (cancel) unwinds like an exception, so the open .incomplete file is flushed for the resume.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    constants.DOWNLOAD_CHUNK_SIZE = _CHUNK_BYTES
    plan = json.loads(sys.stdin.read())
    try:
        problem = fetch(plan)
    except Exception as exc:  # the network gave up after huggingface_hub's own retries: say so, in words
        problem = f"Downloading from {plan['endpoint']} failed: {exc}"
    if problem:
        emit(error=problem)
        return 1
    emit(ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
