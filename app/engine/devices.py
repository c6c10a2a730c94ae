"""The GPUs this machine has, with their memory, found without loading torch into a process that has not yet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    """One visible CUDA device."""

    index: int
    name: str
    total_bytes: int


def visible_gpus() -> list[Gpu]:
    """Every CUDA device: from torch when this process has loaded it, else from nvidia-smi; empty without either.

    Importing torch only to list devices would cost a web request seconds (and the server its quick start).
    """
    if "torch" in sys.modules:
        return _torch_gpus()
    return _smi_gpus()


def _torch_gpus() -> list[Gpu]:
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        out.append(Gpu(index, str(props.name), int(props.total_memory)))
    return out


def _smi_gpus() -> list[Gpu]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        found = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in found.strip().splitlines():
        try:
            index, name, mebibytes = (part.strip() for part in line.split(","))
            gpus.append(Gpu(int(index), name, int(float(mebibytes)) * 2**20))
        except ValueError:
            continue  # "[N/A]" or a line of another shape: that device is not counted
    # CUDA_VISIBLE_DEVICES (as indexes) limits what training could use; renumbered as CUDA does.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and all(p.strip().isdigit() for p in visible.split(",") if p.strip()):
        chosen = [int(p) for p in visible.split(",") if p.strip()]
        by_index = {g.index: g for g in gpus}
        gpus = [Gpu(i, by_index[k].name, by_index[k].total_bytes) for i, k in enumerate(chosen) if k in by_index]
    return gpus
