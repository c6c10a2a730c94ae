"""The dated model table (app/data/models.toml): encoding, training context limit, price and throughput."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine.data import MAX_EXAMPLE_TOKENS
from app.engine.model_files import added_manifests
from app.errors import Invalid

TABLE_PATH = Path(__file__).resolve().parents[2] / "data" / "models.toml"
LOCAL = "local"


@dataclass(frozen=True)
class ModelInfo:
    """What validation needs to know about one model."""

    name: str
    provider: str  # "openai" | "local"
    encoding: str  # "o200k_base" | "cl100k_base" | "local"
    context_limit: int
    training_usd_per_1m: float | None = None
    train_tokens_per_second_cpu: float | None = None
    train_tokens_per_second_gpu: float | None = None
    # (tokens per second, seconds per optimizer step, fixed seconds per job) of the local engine, per device
    pace_cpu: tuple[float | None, float | None, float | None] | None = None
    pace_gpu: tuple[float | None, float | None, float | None] | None = None

    @property
    def is_local(self) -> bool:
        """Whether the model is counted with its own tokenizer (a local Hugging Face model)."""
        return self.encoding == LOCAL

    @property
    def counted_with(self) -> str:
        """Which tokenizer counts this model's tokens, in words."""
        if self.is_local:
            return f"{self.name}'s own tokenizer and chat template"
        return f"OpenAI's {self.encoding} tokenizer"

    @property
    def cache_key(self) -> str:
        """Key of this model's counts in Example.token_counts (shared by models with the same encoding)."""
        return f"local:{self.name}" if self.is_local else self.encoding


@functools.cache
def load_table() -> dict[str, Any]:
    """The parsed table file (read once per process)."""
    with TABLE_PATH.open("rb") as f:
        return tomllib.load(f)


def table_date() -> str:
    """When the table's figures were last checked."""
    return str(load_table().get("as_of", ""))


def default_model() -> str:
    """The model a report uses when none is picked."""
    return str(load_table()["default_model"])


def _info(entry: dict[str, Any], name: str) -> ModelInfo:
    return ModelInfo(
        name=name,
        provider=entry.get("provider", "openai"),
        encoding=entry["encoding"],
        context_limit=int(entry["context_limit"]),
        training_usd_per_1m=entry.get("training_usd_per_1m"),
        train_tokens_per_second_cpu=entry.get("train_tokens_per_second_cpu"),
        train_tokens_per_second_gpu=entry.get("train_tokens_per_second_gpu"),
        pace_cpu=_pace(entry, "cpu"),
        pace_gpu=_pace(entry, "gpu"),
    )


def _pace(entry: dict[str, Any], device: str) -> tuple[float | None, float | None, float | None] | None:
    speed = entry.get(f"train_tokens_per_second_{device}")
    if speed is None:
        return None
    return speed, entry.get(f"train_seconds_per_step_{device}"), entry.get(f"train_fixed_seconds_{device}")


def resolve_model(name: str | None, settings: Any = None) -> ModelInfo:
    """Look a model up by exact name, then longest prefix; `ft:` models resolve to their base model."""
    name = (name or default_model()).strip()
    entries = load_table()["models"]
    base = name.split(":")[1] if name.startswith("ft:") and name.count(":") >= 1 else name
    for entry in entries:
        if entry["name"] == base:
            return _info(entry, name)
    local_models = getattr(settings, "local_models", None) or {}
    if base in local_models:
        # The engine cuts longer chats: that is the context a registered model trains with.
        return ModelInfo(name=name, provider=LOCAL, encoding=LOCAL, context_limit=MAX_EXAMPLE_TOKENS)
    added = _added_contexts(settings)
    if base in added:  # a base model added on the Add a model page (app.basemodels); the engine cuts as above
        context = min(added[base] or MAX_EXAMPLE_TOKENS, MAX_EXAMPLE_TOKENS)
        return ModelInfo(name=name, provider=LOCAL, encoding=LOCAL, context_limit=context)
    best: tuple[int, dict[str, Any]] | None = None
    for entry in entries:
        prefixes = entry.get("prefix") or []
        for prefix in [prefixes] if isinstance(prefixes, str) else prefixes:
            if base.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), entry)
    if best is not None:
        return _info(best[1], name)
    raise Invalid(
        f"Unknown model {name!r}: it is not in Tuneboard's model table ({TABLE_PATH.name}) "
        "nor among the configured local models.",
        code="unknown_model",
        param="model",
    )


def picker_models(settings: Any = None) -> list[str]:
    """Model names offered by the report's model picker: the table's models, then configured local ones."""
    names = [e["name"] for e in load_table()["models"]]
    for local in [*(getattr(settings, "local_models", None) or {}), *_added_contexts(settings)]:
        if local not in names:
            names.append(local)
    return names


def _added_contexts(settings: Any) -> dict[str, int | None]:
    """Added base models by name → their context length (when their config says)."""
    data_dir = getattr(settings, "data_dir", None)
    if data_dir is None:
        return {}
    return {m.name: m.facts.context_length for _, m in added_manifests(Path(data_dir))}
