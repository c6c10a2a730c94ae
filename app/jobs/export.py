"""Exports of tuned models and checkpoints: the PEFT adapter, the merged directory (each as a .tar) and GGUF files.

Built on first download and kept under data_dir/exports/<model>/<key>/, where the key covers the model id and the
adapter it has now (a promoted checkpoint changes it), so a second download streams from disk at once; deleting the
model deletes its exports (forget_exports).

- export_source(session, settings, model_id) -> ExportSource   (NotFound; Invalid for base and OpenAI models)
- download(session, settings, model_id, format, quant) -> Download
- export_view(session, settings, model_id) -> dict (the export page: sizes once built, the Ollama Modelfile)
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from app.config import Settings
from app.engine import export as engine_export
from app.engine.catalog import list_base_models, resolve_base_model
from app.engine.export_modelfile import modelfile
from app.errors import Invalid, NotFound
from app.jobs.model_catalog import resolve_model
from app.jobs.tar_stream import file_chunks, tar_chunks, tar_size

FORMATS = ("adapter", "merged", "gguf")
QUANTS = ("f16", "q8_0")


@dataclass(frozen=True)
class ExportSource:
    """An exportable model: a local tuned model or checkpoint, its base and its adapter, and its cache folder."""

    model_id: str
    kind: str
    base_model: str
    adapter_path: Path
    folder: Path


@dataclass(frozen=True)
class Download:
    """What a download sends: a file name, a media type, the length and the bytes as chunks."""

    filename: str
    media_type: str
    size: int
    chunks: Iterator[bytes]


def export_source(session: Session, settings: Settings, model_id: str) -> ExportSource:
    """The local tuned model or checkpoint with this id; Invalid for a base model or one hosted by OpenAI."""
    resolved = resolve_model(session, settings, model_id)
    if resolved.kind not in ("tuned", "checkpoint") or resolved.provider != "local":
        raise Invalid(
            f"Only local tuned models and checkpoints can be exported; {model_id} is a "
            f"{'base' if resolved.kind == 'base' else 'hosted'} model.",
            code="export_unsupported",
            param="model",
        )
    adapter = Path(resolved.ref.adapter_path)
    weights = adapter / "adapter_model.safetensors"
    if not weights.exists():
        raise NotFound(f"The adapter of {model_id} is missing on disk.", code="model_not_found", param="model")
    stamp = weights.stat().st_mtime_ns
    key = hashlib.sha256(f"{model_id}\n{adapter.resolve()}\n{stamp}".encode()).hexdigest()[:20]
    base = resolved.base_model or resolved.ref.base_model
    return ExportSource(model_id, resolved.kind, base, adapter, exports_folder(settings, model_id) / key)


def exports_folder(settings: Settings, model_id: str) -> Path:
    """Where every export of this model is kept (one sub-folder per adapter it has had)."""
    return settings.data_dir / "exports" / stem(model_id)


def forget_exports(settings: Settings, model_id: str) -> None:
    """Delete the model's built exports: a deleted model's weights must not stay downloadable on disk."""
    shutil.rmtree(exports_folder(settings, model_id), ignore_errors=True)


def stem(model_id: str) -> str:
    """A file name made from a model id (ft:base:suffix:job -> ft-base-suffix-job)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("-.") or "model"


def check_format(export_format: str, quant: str) -> None:
    """Invalid for a format or a quantization export does not write."""
    if export_format not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}.", param="format")
    if quant not in QUANTS:
        raise Invalid(f"quant must be one of {', '.join(QUANTS)} (it applies to gguf).", param="quant")


def target(source: ExportSource, export_format: str, quant: str = "f16") -> Path:
    """Where an export of source lives once built (a directory, or the GGUF file)."""
    if export_format == "gguf":
        return source.folder / f"{stem(source.model_id)}-{quant}.gguf"
    return source.folder / export_format


def build(settings: Settings, source: ExportSource, export_format: str, quant: str = "f16") -> Path:
    """The export, built now unless cached; concurrent callers build it once (the others wait for it)."""
    out = target(source, export_format, quant)
    if out.exists():
        return out
    # A GGUF is written from the merged directory, which is built (under its own lock) and kept first.
    merged = build(settings, source, "merged") if export_format == "gguf" else None
    source.folder.mkdir(parents=True, exist_ok=True)
    with open(source.folder / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if out.exists():
                return out
            if export_format == "adapter":
                return engine_export.export_adapter(source.adapter_path, out, base_model=source.base_model)
            if merged is not None:
                return engine_export.export_gguf(merged, out, quant)
            base_dir = resolve_base_model(settings, source.base_model)
            return engine_export.export_merged(base_dir, source.adapter_path, out)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def download(session: Session, settings: Settings, model_id: str, export_format: str, quant: str = "f16") -> Download:
    """An export to stream: a GGUF file as itself, a directory as a .tar (built first when not cached)."""
    check_format(export_format, quant)
    source = export_source(session, settings, model_id)
    # Building can take a minute: hold no database transaction across it.
    session.rollback()
    out = build(settings, source, export_format, quant)
    name = f"{stem(model_id)}-{export_format}"
    if export_format == "gguf":
        return Download(out.name, "application/octet-stream", out.stat().st_size, file_chunks(out))
    return Download(f"{name}.tar", "application/x-tar", tar_size(out, name), tar_chunks(out, name))


def _size(source: ExportSource, export_format: str, quant: str = "f16") -> int | None:
    out = target(source, export_format, quant)
    if not out.exists():
        return None
    if out.is_file():
        return out.stat().st_size
    return tar_size(out, f"{stem(source.model_id)}-{export_format}")


def _base_dir(settings: Settings, name: str) -> Path | None:
    """The base model's directory if it is on disk already (the page never converts one)."""
    return next((m.path for m in list_base_models(settings) if m.name == name and m.cached), None)


def export_view(session: Session, settings: Settings, model_id: str) -> dict:
    """The export page: each download with its size once built, and the Ollama Modelfile of the f16 GGUF."""
    source = export_source(session, settings, model_id)
    gguf_name = target(source, "gguf", "f16").name
    downloads = [
        {"format": "adapter", "quant": None, "label": "Adapter", "size": _size(source, "adapter")},
        {"format": "merged", "quant": None, "label": "Merged", "size": _size(source, "merged")},
        {"format": "gguf", "quant": "f16", "label": "GGUF f16", "size": _size(source, "gguf", "f16")},
        {"format": "gguf", "quant": "q8_0", "label": "GGUF q8_0", "size": _size(source, "gguf", "q8_0")},
    ]
    return {
        "source": source,
        "downloads": downloads,
        "gguf_name": gguf_name,
        "modelfile": modelfile(gguf_name, _base_dir(settings, source.base_model)),
    }
