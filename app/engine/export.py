"""Take a tuned model away: its PEFT adapter, the base with the adapter merged, or one GGUF file.

Each writes beside its target and renames, so a reader (a second download, the cache) never sees half of one.
export_merged and export_gguf load torch/transformers/peft or numpy only when called.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from app.engine import _hf

# What peft and vLLM's --lora-modules read; the trainer's state and optimizer stay behind.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# What a merged directory carries besides the weights (whichever the base has).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)


def export_adapter(adapter_dir: Path, out: Path, base_model: str | None = None) -> Path:
    """Copy the adapter's config and weights to the directory out; base_model replaces the server-side path
    recorded in adapter_config.json (a path on this machine means nothing elsewhere)."""
    tmp = _staging(out)
    try:
        for name in ADAPTER_FILES:
            shutil.copy2(adapter_dir / name, tmp / name)
        if base_model is not None:
            config = json.loads((tmp / "adapter_config.json").read_text())
            config["base_model_name_or_path"] = base_model
            (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export_merged(base_dir: Path, adapter_dir: Path | None, out: Path) -> Path:
    """The base with the adapter merged (float32, as Tuneboard serves it) as a Hugging Face directory: safetensors,
    config, generation config, tokenizer and chat template. Without an adapter, the base itself."""
    _hf.prepare()
    import torch
    from transformers import AutoModelForCausalLM

    tmp = _staging(out)
    try:
        with _hf.quiet():
            model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
            if adapter_dir is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
            config = model.config
            if hasattr(config, "quantization_config"):
                delattr(config, "quantization_config")
            model.save_pretrained(tmp, safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (base_dir / name).exists():
                shutil.copy2(base_dir / name, tmp / name)
        if not (tmp / "generation_config.json").exists() and (base_dir / "generation_config.json").exists():
            shutil.copy2(base_dir / "generation_config.json", tmp / "generation_config.json")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export_gguf(merged_dir: Path, out_file: Path, quant: str = "f16") -> Path:
    """One GGUF file (f16, or q8_0) of a merged directory, tokenizer and chat template included (gguf_writer.py)."""
    from app.engine.gguf_writer import write_gguf

    return write_gguf(merged_dir, out_file, quant)


def _staging(out: Path) -> Path:
    """A fresh name beside out to build in (unique per call: two threads of one process never share one)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))


def _replace(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
