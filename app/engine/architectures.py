"""Which local paths serve a model's architecture: the CPU fast paths (chat decoding, training) or the general
Hugging Face + PEFT path that every architecture takes otherwise.

Read from a model's config (config.json's dict, or a loaded model's config object) without importing torch, so
the catalog can say so in the model list. The fast paths check the loaded modules too (decoder_parts.supports,
cpu_training.supports_packed_attention); these are the config-level halves of those checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# model_type values whose decoder maths cpu_decoder reproduces: Llama; Mistral is Llama with a sliding window;
# Qwen2 adds q/k/v biases; Qwen3 adds per-head RMSNorm of queries and keys (each checked against the HF forward).
FAST_CHAT = ("llama", "mistral", "qwen2", "qwen3")
# model_type values whose attention calls cpu_training's packed attention reproduces (what differs between them —
# biases, q/k norms — happens outside the attention call, in the modules PEFT wraps).
FAST_TRAINING = ("llama", "mistral", "qwen2", "qwen3", "phi3")


@dataclass(frozen=True)
class Paths:
    """A model's architecture (its model_type) and whether each CPU fast path serves it."""

    architecture: str
    fast_training: bool
    fast_chat: bool


def _getter(config: Any) -> Callable[[str], Any]:
    if isinstance(config, Mapping):
        return config.get
    return lambda key: getattr(config, key, None)


def window_binds(config: Any) -> bool:
    """Whether some layer attends through a sliding window shorter than the model's context."""
    get = _getter(config)
    window = get("sliding_window")
    if not window or get("use_sliding_window") is False:
        return False
    types = get("layer_types")
    if types is not None and "sliding_attention" not in types:
        return False
    longest = get("max_position_embeddings")
    return not (longest and window >= longest)


def _plain(config: Any) -> bool:
    """SiLU-gated MLP, no MLP biases, no tensor-parallel split, no softcapping, no window that binds."""
    get = _getter(config)
    return (
        (get("hidden_act") or "silu") == "silu"
        and not get("mlp_bias")
        and (get("pretraining_tp") or 1) == 1
        and not get("attn_logit_softcapping")
        and not get("final_logit_softcapping")
        and not window_binds(config)
    )


def fast_chat(config: Any) -> bool:
    """Whether the CPU chat decoder computes this config's forward (the module-level checks come on load)."""
    get = _getter(config)
    if get("model_type") not in FAST_CHAT or not _plain(config):
        return False
    # Llama's and Mistral's attention biases are optional (and then not computed); Qwen2's are always there.
    return get("model_type") == "qwen2" or not get("attention_bias")


def fast_training(config: Any) -> bool:
    """Whether the CPU training path's packed attention computes this config's attention."""
    get = _getter(config)
    if get("model_type") not in FAST_TRAINING or get("attention_dropout"):
        return False
    return not get("attn_logit_softcapping") and not window_binds(config)


def paths(config: Any) -> Paths:
    """The architecture of a config and the fast paths that serve it."""
    architecture = _getter(config)("model_type") or "unknown"
    return Paths(str(architecture), fast_training(config), fast_chat(config))


def read_paths(directory: Path) -> Paths | None:
    """paths() of a Hugging Face model directory's config.json; None when it has none (or an unreadable one)."""
    try:
        config = json.loads((Path(directory) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return paths(config) if isinstance(config, dict) else None
