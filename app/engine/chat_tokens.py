"""What token counting and estimates need from the engine without loading a model: a base model's tokenizer (read
from the bundled GGUF when the weights are not converted yet) and the device a training job would run on."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from app.engine import _hf
from app.engine.catalog import SMOLLM2, ModelSettings, gguf_file, list_base_models
from app.engine.tokenizer import load_tokenizer
from app.errors import NotFound

_lock = threading.Lock()
_from_gguf: dict[str, object] = {}  # like app.engine.tokenizer's cache: tokenizers are read-only, one per process
_NVIDIA = (Path("/dev/nvidia0"), Path("/proc/driver/nvidia/gpus"))


def tokenizer_dir(settings: ModelSettings, name: str) -> Path:
    """Where the tokenizer of a base model is kept: its model directory, or a tokenizer-only copy of the GGUF's."""
    for model in list_base_models(settings):
        if model.name == name and model.cached and model.path is not None:
            return model.path
    if name != SMOLLM2:
        raise NotFound(f"Unknown base model {name!r}.", code="model_not_found", param="model")
    # Converting the weights takes minutes; the tokenizer alone takes seconds, and is kept for the next process.
    target = settings.data_dir / "tokenizers" / name
    with _lock:
        if not (target / "tokenizer.json").exists():
            target.mkdir(parents=True, exist_ok=True)
            _gguf_tokenizer().save_pretrained(target)
    return target


def _gguf_tokenizer():
    """The bundled GGUF's tokenizer, read once per process (several seconds: the file is parsed)."""
    source = gguf_file()
    key = str(source)
    tokenizer = _from_gguf.get(key)
    if tokenizer is None:
        _hf.prepare()
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        _from_gguf[key] = tokenizer
    return tokenizer


def chat_tokenizer(settings: ModelSettings, name: str):
    """The tokenizer (with its chat template) of a base model, never converting its weights."""
    return load_tokenizer(tokenizer_dir(settings, name))


def training_device(requested: str = "auto") -> str:
    """ "cuda" or "cpu": where a job asking for `requested` would train (lora_model.pick_device's rule).

    torch is asked only where a GPU device node exists or torch is already loaded, so a CPU-only server never pays
    for importing it.
    """
    if requested == "cuda":
        return "cuda"
    if requested != "auto":
        return "cpu"
    if "torch" not in sys.modules and not any(p.exists() for p in _NVIDIA):
        return "cpu"
    _hf.prepare()
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
