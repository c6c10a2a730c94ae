"""What the page and /api call: the base model list with facts and memory fit, and adding from each source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from app.basemodels.downloads import Download, ModelDownloads, partial_dir
from app.basemodels.fit import Fit, available_ram, fits
from app.basemodels.hub import plan_download
from app.basemodels.registry import add_gguf_file, add_local_directory, check_new_name, list_added, suggested_name
from app.basemodels.throughput import Throughput, measured_speeds
from app.config import Settings
from app.engine.catalog import SMOLLM2, gguf_file, list_base_models
from app.engine.devices import Gpu, visible_gpus
from app.engine.model_files import Manifest, ModelFacts, describe_gguf, describe_hf_dir
from app.errors import DomainError, Invalid

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
SOURCE_WORDS = {
    "gguf": "bundled (GGUF)",
    "local": "settings (local_models)",
    "hf": "Hugging Face",
    "directory": "local directory",
    "gguf-file": "GGUF file",
}


@dataclass(frozen=True)
class BaseModelRow:
    """One base model as the list shows it."""

    name: str
    source: str
    ready: bool
    facts: ModelFacts
    origin: str | None = None  # the repo, directory or file it came from
    fits: list[Fit] = field(default_factory=list)
    added: bool = False
    throughput: Throughput = field(default_factory=Throughput)  # measured on this machine, once known


def _origin(manifest: Manifest) -> str:
    source = manifest.source
    if manifest.kind == "hf":
        return f"{source['repo']}@{source.get('revision', 'main')}"
    return str(source.get("path") or source.get("file"))


def _facts(info_path: Path | None, name: str, source: str) -> ModelFacts:
    try:
        if info_path is not None:
            return describe_hf_dir(info_path)
        if source == "gguf" and name == SMOLLM2:
            return describe_gguf(gguf_file())
    except (DomainError, OSError, ValueError):
        pass
    return ModelFacts()


def base_model_rows(
    settings: Settings,
    batch: int,
    sequence: int,
    gpus: list[Gpu] | None = None,
    session: Session | None = None,
) -> list[BaseModelRow]:
    """Every base model with its facts (from its manifest, directory or GGUF file), whether it fits for LoRA, and
    with a session, its measured speeds on this machine (throughput.py)."""
    manifests = {m.name: m for m in list_added(settings)}
    ram = available_ram()
    gpus = visible_gpus() if gpus is None else gpus
    speeds = measured_speeds(session, settings) if session is not None else {}
    rows = []
    for info in list_base_models(settings):
        manifest = manifests.get(info.name)
        facts = manifest.facts if manifest else _facts(info.path, info.name, info.source)
        rows.append(
            BaseModelRow(
                name=info.name,
                source=SOURCE_WORDS.get(info.source, info.source),
                ready=info.cached,
                facts=facts,
                origin=_origin(manifest) if manifest else (str(info.path) if info.source == "local" else None),
                fits=fits(facts, batch, sequence, ram, gpus),
                added=manifest is not None,
                throughput=speeds.get(info.name, Throughput()),
            )
        )
    return rows


def add_from_hub(
    settings: Settings, downloads: ModelDownloads, repo: str, revision: str, token: str | None, name: str | None
) -> Download:
    """Plan a Hub download (access, files, checksums, disk space) and start it in the background."""
    repo, token = repo.strip(), (token or "").strip() or None
    # The id goes into the hub's URLs: owner/name of the hub's own characters, nothing that could climb a path.
    if not _REPO_ID.match(repo) or ".." in repo:
        raise Invalid("Give the repo id as owner/name, e.g. HuggingFaceTB/SmolLM2-360M-Instruct.", param="repo")
    name = check_new_name(settings, (name or "").strip() or suggested_name(repo))
    plan = plan_download(settings, repo, revision.strip() or "main", token, partial_dir(settings, name))
    return downloads.start(plan, name, token)


def add_from_directory(settings: Settings, path: str, name: str | None) -> Manifest:
    """Register a local Hugging Face directory."""
    return add_local_directory(settings, path, (name or "").strip() or None)


def add_from_gguf(settings: Settings, file: str, name: str | None) -> Manifest:
    """Register a GGUF file (converted on first use)."""
    return add_gguf_file(settings, file, (name or "").strip() or None)
