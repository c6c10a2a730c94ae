"""The GPUs this machine shows torch, with their memory (torch loaded on first call, never at import)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    """One visible CUDA device."""

    index: int
    name: str
    total_bytes: int


def visible_gpus() -> list[Gpu]:
    """Every CUDA device torch can use; empty without torch or CUDA."""
    if importlib.util.find_spec("torch") is None:
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        out.append(Gpu(index, str(props.name), int(props.total_memory)))
    return out
