"""Added base models on disk: their manifest, what a Hugging Face directory or GGUF file says about itself.

An added model lives in `data_dir/models/added/<name>/` with a manifest (`tuneboard-model.json`): where it came
from (a Hugging Face repo, a local directory, a GGUF file), its facts and its files. Downloaded models keep their
files beside the manifest; a local directory stays where it is; a GGUF file is converted into `hf/` on first use.
Reads only files: no torch here (the safetensors header and the GGUF metadata are read directly).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.engine.gguf_header import read_gguf_header

MANIFEST = "tuneboard-model.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")


def added_root(data_dir: Path) -> Path:
    """The folder holding one subfolder per added model."""
    return data_dir / "models" / "added"


@dataclass(frozen=True)
class ModelFacts:
    """What a model says about itself; None where it does not say."""

    architecture: str | None = None
    parameters: int | None = None
    bytes: int | None = None
    context_length: int | None = None
    licence: str | None = None
    hidden_size: int | None = None
    layers: int | None = None
    vocab_size: int | None = None


@dataclass(frozen=True)
class Manifest:
    """An added model: its name, source ({"kind": "hf"|"local"|"gguf", ...}), facts, when and which files."""

    name: str
    source: dict[str, Any]
    facts: ModelFacts
    added_at: str
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """hf, local or gguf."""
        return str(self.source["kind"])


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write the manifest atomically (a reader sees the old one or the new one)."""
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(asdict(manifest), indent=2))
    tmp.replace(directory / MANIFEST)


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest in `directory`, or None when there is none or it cannot be read."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
        return Manifest(
            name=data["name"],
            source=data["source"],
            facts=ModelFacts(**data.get("facts", {})),
            added_at=data["added_at"],
            files=data.get("files", []),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def added_manifests(data_dir: Path) -> list[tuple[Path, Manifest]]:
    """Every added model's folder and manifest, by name."""
    root = added_root(data_dir)
    if not root.is_dir():
        return []
    found = [(d, read_manifest(d)) for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    return [(d, m) for d, m in found if m is not None]


def hf_dir_problems(path: Path) -> list[str]:
    """What keeps a directory from being a usable Hugging Face model (empty when it is one)."""
    if not path.is_dir():
        return [f"{path} is not a directory."]
    problems = []
    if not (path / "config.json").is_file():
        problems.append("It has no config.json.")
    if not list(path.glob("*.safetensors")):
        problems.append("It has no .safetensors weights (pickled .bin weights are not loaded).")
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        problems.append("It has no tokenizer (tokenizer.json, tokenizer.model or vocab.json).")
    if not _has_chat_template(path):
        problems.append("Its tokenizer has no chat template.")
    return problems


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    try:
        config = json.loads((path / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(config.get("chat_template"))


def safetensors_parameters(path: Path) -> int:
    """The number of parameters in a .safetensors file, from its header alone."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in entry["shape"]:
            count *= int(dim)
        total += count
    return total


def describe_hf_dir(path: Path) -> ModelFacts:
    """Architecture, parameters, bytes, context length and licence of a Hugging Face directory."""
    try:
        config: dict[str, Any] = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    weights = sorted(path.glob("*.safetensors"))
    architectures = config.get("architectures") or []
    return ModelFacts(
        # model_type ("llama", "qwen2"), as the engine's model list and a GGUF's general.architecture name it
        architecture=config.get("model_type") or (architectures[0] if architectures else None),
        parameters=sum(safetensors_parameters(w) for w in weights) if weights else None,
        bytes=sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and ".cache" not in f.parts),
        context_length=next((int(config[k]) for k in _CONTEXT_KEYS if isinstance(config.get(k), int)), None),
        licence=card_licence(path / "README.md") or config.get("license"),
        hidden_size=_int(config.get("hidden_size") or config.get("n_embd") or config.get("d_model")),
        layers=_int(config.get("num_hidden_layers") or config.get("n_layer")),
        vocab_size=_int(config.get("vocab_size")),
    )


def card_licence(readme: Path) -> str | None:
    """The `license` of a model card's YAML front matter, or None."""
    try:
        text = readme.read_text(errors="replace")
    except OSError:
        return None
    match = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    licence = data.get("license") if isinstance(data, dict) else None
    if isinstance(licence, list):
        licence = ", ".join(str(x) for x in licence)
    return str(licence) if licence else None


def describe_gguf(path: Path) -> ModelFacts:
    """The facts a GGUF file's metadata holds; ValueError when it is not a GGUF file."""
    header = read_gguf_header(path)
    meta = header.metadata
    arch = meta.get("general.architecture")
    return ModelFacts(
        architecture=str(arch) if arch else None,
        parameters=header.n_elements,
        bytes=path.stat().st_size,
        context_length=_int(meta.get(f"{arch}.context_length")),
        licence=meta.get("general.license"),
        hidden_size=_int(meta.get(f"{arch}.embedding_length")),
        layers=_int(meta.get(f"{arch}.block_count")),
        vocab_size=header.array_lengths.get("tokenizer.ggml.tokens"),
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
