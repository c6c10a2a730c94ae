"""Weight formats of the CPU chat decoder: float32, weight-only int8 and 4-bit groups, with an unmerged LoRA delta.

Each linear takes its input in `input_dtype` and returns its kernel's own output dtype (bf16 for the quantized
kernels): the decoder promotes to float32 only where the maths needs it, instead of after every matmul.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F


class Linear(Protocol):
    """What the decoder calls: y = x @ W.T, x in `input_dtype`."""

    input_dtype: torch.dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class Float32Linear:
    """y = x @ W.T in float32: the reference maths."""

    input_dtype = torch.float32

    def __init__(self, weight: torch.Tensor):
        self.weight = weight.detach().float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class Int8Linear:
    """y = x @ W.T with W as per-channel int8 and bf16 activations (weight-only: activation outliers survive)."""

    input_dtype = torch.bfloat16

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
        self.weight = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
        self.scales = scales.to(torch.bfloat16)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch._weight_int8pack_mm(x.to(torch.bfloat16), self.weight, self.scales)


class Int4Linear:
    """y = x @ W.T with W as 4-bit groups of 32 (asymmetric min/max), bf16 activations."""

    GROUP = 32
    input_dtype = torch.bfloat16

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach().float()
        n, k = weight.shape
        groups = weight.reshape(n, k // self.GROUP, self.GROUP)
        low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)
        scale = (high - low).clamp(min=1e-8) / 15
        q = torch.round((groups - low) / scale).clamp(0, 15).to(torch.int32).reshape(n, k)
        zero = low + scale * 8  # the kernel computes (q - 8) * scale + zero
        scales = torch.cat([scale, zero], -1).reshape(n, k // self.GROUP, 2).transpose(0, 1).contiguous()
        self.scales = scales.to(torch.bfloat16)
        self.weight = torch._convert_weight_to_int4pack_for_cpu(q, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self.weight, self.GROUP, self.scales)


class WithLoRA:
    """A quantized base linear plus an exact float32 low-rank delta: rounding a merged weight to 4 bits would erase
    the small LoRA update (it is far below one quantization step), so the adapter is applied unmerged."""

    def __init__(self, base: Linear, down: torch.Tensor, up: torch.Tensor):
        self.base, self.down, self.up = base, down.contiguous(), up.contiguous()
        self.input_dtype = base.input_dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x.float(), self.down), self.up)


def lora_pairs(modules, row_scales: list[float], scaling_key: str = "default"):
    """(A, B*scaling) stacked for fused projections: A is [sum r, in], B block-diagonal [sum out, sum r].

    row_scales: a factor per module folded into its output rows (as into the fused base weight).
    """
    downs = [m.lora_A[scaling_key].weight.detach().float() for m in modules]
    ups = [
        m.lora_B[scaling_key].weight.detach().float() * (m.scaling[scaling_key] * s)
        for m, s in zip(modules, row_scales, strict=True)
    ]
    return torch.cat(downs), torch.block_diag(*ups)


KINDS: dict[str, Callable[[torch.Tensor], Linear]] = {"fp32": Float32Linear, "w8": Int8Linear, "w4": Int4Linear}


def make(kind: str, weight: torch.Tensor) -> Linear:
    """The linear of that kind, falling back where a kernel refuses the shape."""
    if kind == "w4" and weight.shape[1] % Int4Linear.GROUP:
        kind = "w8"
    try:
        return KINDS[kind](weight)
    except RuntimeError:  # a kernel missing on this CPU build, or an odd shape: exact and slower beats failing
        return Float32Linear(weight)
