"""GPUs are listed from nvidia-smi when torch is not loaded, limited to CUDA_VISIBLE_DEVICES as CUDA would."""

from __future__ import annotations

from app.engine import devices
from app.engine.devices import Gpu


def _fake_smi(tmp_path, monkeypatch, output: str) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")


def test_nvidia_smi_lists_each_gpu_with_its_memory(tmp_path, monkeypatch):
    _fake_smi(tmp_path, monkeypatch, "0, NVIDIA H200, 143771\n1, NVIDIA L4, 23034\n2, Broken, [N/A]")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert devices._smi_gpus() == [Gpu(0, "NVIDIA H200", 143771 * 2**20), Gpu(1, "NVIDIA L4", 23034 * 2**20)]


def test_cuda_visible_devices_picks_and_renumbers_them(tmp_path, monkeypatch):
    _fake_smi(tmp_path, monkeypatch, "0, NVIDIA H200, 143771\n1, NVIDIA L4, 23034")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert devices._smi_gpus() == [Gpu(0, "NVIDIA L4", 23034 * 2**20)]


def test_no_nvidia_smi_means_no_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devices._smi_gpus() == []
