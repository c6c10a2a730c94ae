"""Added base models on disk: list, add a local directory or a GGUF file, install a finished download, delete.

Each lives in data_dir/models/added/<name>/ with its manifest (app.engine.model_files); the engine's catalog lists
them beside SmolLM2 and Settings.local_models, so jobs, chat and evals can use them by name.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from app.config import Settings
from app.engine.catalog import list_base_models
from app.engine.model_files import (
    NAME_PATTERN,
    Manifest,
    added_manifests,
    added_root,
    describe_gguf,
    describe_hf_dir,
    hf_dir_problems,
    write_manifest,
)
from app.errors import Conflict, Invalid, NotFound
from app.settings.maintenance import require_maintenance


def suggested_name(text: str) -> str:
    """A model name made from a repo id, a directory or a file name: its last part, other characters as '-'."""
    last = text.rstrip("/").rsplit("/", 1)[-1]
    if last.lower().endswith(".gguf"):
        last = last[: -len(".gguf")]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", last).strip("-.") or "model"


def check_new_name(settings: Settings, name: str) -> str:
    """The name, if it is well formed and no base model has it yet (Invalid or Conflict otherwise)."""
    if not NAME_PATTERN.match(name):
        raise Invalid(
            f"{name!r} cannot name a model: use letters, digits, '.', '_' and '-' (up to 100).",
            code="invalid_name",
            param="name",
        )
    if any(m.name == name for m in list_base_models(settings)) or (added_root(settings.data_dir) / name).exists():
        raise Conflict(f"A base model named {name!r} exists already: choose another name.", param="name")
    return name


def list_added(settings: Settings) -> list[Manifest]:
    """Every added model's manifest, by name."""
    return [m for _, m in added_manifests(settings.data_dir)]


def get_added(settings: Settings, name: str) -> Manifest:
    """One added model's manifest; NotFound when there is none."""
    for manifest in list_added(settings):
        if manifest.name == name:
            return manifest
    raise NotFound(f"No added base model named {name!r}.", code="model_not_found", param="name")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _files(folder: Path) -> list[dict[str, object]]:
    return [
        {"name": f.name, "size": f.stat().st_size} for f in sorted(folder.iterdir()) if f.is_file() and f.name[0] != "."
    ]


def add_local_directory(settings: Settings, path_text: str, name: str | None = None) -> Manifest:
    """Register a Hugging Face directory where it is (not copied), after checking it is complete."""
    path = Path(path_text.strip()).expanduser()
    if not path_text.strip() or not path.is_absolute():
        raise Invalid("Give the directory's absolute path.", code="invalid_path", param="path")
    problems = hf_dir_problems(path)
    if problems:
        raise Invalid(f"{path} cannot be used: {' '.join(problems)}", code="invalid_model_dir", param="path")
    name = check_new_name(settings, name or suggested_name(str(path)))
    manifest = Manifest(name, {"kind": "local", "path": str(path)}, describe_hf_dir(path), _now(), _files(path))
    _save(settings, manifest)
    return manifest


def add_gguf_file(settings: Settings, file_text: str, name: str | None = None) -> Manifest:
    """Register a GGUF file; the engine converts it (dequantized) into a Hugging Face directory on first use."""
    path = Path(file_text.strip()).expanduser()
    if not file_text.strip() or not path.is_absolute():
        raise Invalid("Give the GGUF file's absolute path.", code="invalid_path", param="file")
    if not path.is_file():
        raise Invalid(f"There is no file at {path}.", code="invalid_path", param="file")
    try:
        facts = describe_gguf(path)
    except (ValueError, OSError) as exc:
        raise Invalid(f"{path.name} cannot be read as a GGUF file: {exc}", code="invalid_gguf", param="file") from exc
    name = check_new_name(settings, name or suggested_name(path.name))
    files = [{"name": path.name, "size": path.stat().st_size}]
    _save(settings, Manifest(name, {"kind": "gguf", "file": str(path)}, facts, _now(), files))
    return get_added(settings, name)


def install_download(
    settings: Settings, name: str, folder: Path, source: dict[str, object], files: list[dict[str, object]]
) -> Manifest:
    """Move a fetched and verified download into place as an added model (Invalid if it is not a usable model)."""
    shutil.rmtree(folder / ".partial", ignore_errors=True)  # the fetcher's leftovers, if any
    (folder / "fetch.log").unlink(missing_ok=True)
    problems = hf_dir_problems(folder)
    if problems:
        raise Invalid(f"The downloaded files are not a usable model: {' '.join(problems)}", code="invalid_model_dir")
    manifest = Manifest(name, source, describe_hf_dir(folder), _now(), files)
    write_manifest(folder, manifest)
    target = added_root(settings.data_dir) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise Conflict(f"A base model named {name!r} appeared meanwhile; the download stays in {folder}.")
    folder.rename(target)
    return manifest


def _save(settings: Settings, manifest: Manifest) -> None:
    folder = added_root(settings.data_dir) / manifest.name
    folder.mkdir(parents=True)
    write_manifest(folder, manifest)


def delete_added(session: Session, settings: Settings, name: str) -> None:
    """Remove an added model (its downloaded or converted files; a local directory or GGUF file stays)."""
    get_added(settings, name)
    require_maintenance(session, f"Deleting the base model {name}")
    shutil.rmtree(added_root(settings.data_dir) / name)
