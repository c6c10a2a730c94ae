"""Planning a download from the Hugging Face Hub: which files, their checksums, and whether the disk can hold them.

The hub's JSON API (`GET /api/models/{repo}/revision/{rev}?blobs=true`) is read here with httpx, not with
huggingface_hub: the engine switches huggingface_hub to offline mode in any process that has loaded a model, so
the files themselves are fetched in a child process (fetch_main.py) that has not.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from app.config import Settings
from app.errors import Forbidden, Invalid, NotFound

# Weights in formats the engine does not load; pickled ones (.bin, .pt, ...) could run code when loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_OTHER_WEIGHTS = (".gguf", ".onnx", ".h5", ".msgpack", ".tflite", ".ot", ".mlmodel", ".npz")
DISK_MARGIN = 1.05  # room for the manifest and the file system's own blocks


@dataclass(frozen=True)
class HubFile:
    """One file to fetch: its name in the repo, size, and checksum (LFS sha256, or the git blob id)."""

    name: str
    size: int
    sha256: str | None
    blob_id: str | None


@dataclass(frozen=True)
class HubPlan:
    """A download decided: the repo at one commit, the files to fetch, whether the hub marks it gated."""

    repo: str
    revision: str
    commit: str
    files: list[HubFile]
    gated: bool = False

    @property
    def total_bytes(self) -> int:
        """The sum of the files' sizes."""
        return sum(f.size for f in self.files)


def free_bytes(path: Path) -> int:
    """Free space on the file system holding `path` (tests replace this, not the disk)."""
    return shutil.disk_usage(path).free


def plan_download(settings: Settings, repo: str, revision: str, token: str | None, target_dir: Path) -> HubPlan:
    """Ask the hub what `repo` at `revision` holds, pick the files to fetch and check the disk can hold them."""
    if settings.hf_hub_offline:
        raise Invalid(
            "Hugging Face Hub downloads are off on this server (HF_HUB_OFFLINE is set): add the model from a local "
            "directory or a GGUF file instead.",
            code="hub_offline",
        )
    info = _model_info(settings.hf_endpoint, repo, revision, token)
    siblings = info.get("siblings") or []
    files = [_hub_file(s) for s in siblings if _wanted(str(s.get("rfilename", "")))]
    if not any(f.name.endswith(".safetensors") for f in files):
        pickled = [s["rfilename"] for s in siblings if str(s.get("rfilename", "")).endswith(PICKLE_SUFFIXES)]
        why = (
            f"it has only pickled weights ({', '.join(pickled[:3])}), which can run code when loaded"
            if pickled
            else "it has no .safetensors weights"
        )
        raise Invalid(f"{repo} cannot be added: {why}. Choose a repo with .safetensors files.", code="no_safetensors")
    commit = str(info.get("sha") or "")
    if not re.fullmatch(r"[0-9a-f]{40}", commit):  # it names a folder and pins every file to one commit
        raise Invalid(f"The hub's answer for {repo} has no commit sha.", code="hub_error")
    plan = HubPlan(repo, revision, commit, files, gated=bool(info.get("gated")))
    check_disk_space(plan.total_bytes, target_dir)
    return plan


def check_disk_space(needed: int, target_dir: Path) -> None:
    """Refuse in words when the disk holding `target_dir` has less room than `needed` bytes (and a margin)."""
    existing = target_dir
    while not existing.exists():
        existing = existing.parent
    free = free_bytes(existing)
    if needed * DISK_MARGIN > free:
        raise Invalid(
            f"Not enough disk space: the model needs {_gb(needed * DISK_MARGIN)} and {existing} has {_gb(free)} "
            "free. Free some space or choose a smaller model.",
            code="disk_full",
        )


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _wanted(name: str) -> bool:
    # Top-level files only: sub-folders hold other formats (onnx/, original/) or training leftovers.
    if not name or "/" in name or name.startswith("."):
        return False
    return not name.endswith(PICKLE_SUFFIXES + _OTHER_WEIGHTS)


def _hub_file(sibling: dict) -> HubFile:
    lfs = sibling.get("lfs") or {}
    size = sibling.get("size")
    if size is None:
        size = lfs.get("size", 0)
    return HubFile(str(sibling["rfilename"]), int(size), lfs.get("sha256"), sibling.get("blobId"))


def _model_info(endpoint: str, repo: str, revision: str, token: str | None) -> dict:
    url = f"{endpoint.rstrip('/')}/api/models/{repo}/revision/{quote(revision, safe='')}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.get(url, params={"blobs": "true"}, headers=headers, timeout=30.0)
    except httpx.HTTPError as exc:
        raise Invalid(f"Could not reach the Hugging Face Hub at {endpoint}: {exc}.", code="hub_unreachable") from exc
    if response.status_code in (401, 403):
        if token:
            raise Forbidden(
                f"The hub refused this token for {repo}: check that it is valid and that you accepted the model's "
                "conditions on its page.",
                code="hub_forbidden",
            )
        raise Forbidden(
            f"{repo} is gated or private: accept its conditions on the hub and give an access token.",
            code="hub_token_needed",
            param="token",
        )
    if response.status_code == 404:
        raise NotFound(f"The hub has no model {repo} at revision {revision}.", code="hub_not_found", param="repo")
    if response.status_code >= 400:
        raise Invalid(f"The hub answered {response.status_code} for {repo}.", code="hub_error")
    try:
        data = response.json()
    except ValueError as exc:
        raise Invalid(f"The hub's answer for {repo} was not JSON.", code="hub_error") from exc
    if not isinstance(data, dict):
        raise Invalid(f"The hub's answer for {repo} was not a model.", code="hub_error")
    return data
