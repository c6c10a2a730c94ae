"""Whether a base model fits this machine's memory for LoRA training, by a rule written down here.

The rule (bytes), for P parameters, batch B, sequence length S, hidden size H, L layers, vocabulary V:

    weights      4·P            the frozen base model in float32 (the engine loads it so on CPU and GPU)
    activations  34·B·S·H·L     what backward keeps per layer in 16-bit (Korthikanti et al. 2022, without the
                                attention scores, which fused attention does not store)
    logits       8·B·S·V        the float32 logits and their gradient
    need       = 1.2 · (weights + activations + logits)   the 20% covers LoRA weights, Adam's state and the
                                                          allocator's slack

It fits in RAM when `need` ≤ the memory available now (psutil), and on a GPU when `need` ≤ that GPU's total memory.
Unknown shapes (no hidden size or layers) count the weights only and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from app.engine.devices import Gpu
from app.engine.model_files import ModelFacts

_SLACK = 1.2


@dataclass(frozen=True)
class Fit:
    """One memory (RAM or a GPU) and whether the model fits it."""

    where: str
    need_bytes: int
    have_bytes: int

    @property
    def fits(self) -> bool:
        """Whether the estimate is within the memory."""
        return self.need_bytes <= self.have_bytes


def training_bytes(facts: ModelFacts, batch: int, sequence: int) -> int | None:
    """The estimated memory LoRA training needs (the rule above); None when the parameter count is unknown."""
    if not facts.parameters:
        return None
    need = 4 * facts.parameters
    if facts.hidden_size and facts.layers:
        need += 34 * batch * sequence * facts.hidden_size * facts.layers
    if facts.vocab_size:
        need += 8 * batch * sequence * facts.vocab_size
    return int(need * _SLACK)


def available_ram() -> int:
    """Memory available to a new process now."""
    return int(psutil.virtual_memory().available)


def fits(facts: ModelFacts, batch: int, sequence: int, ram: int, gpus: list[Gpu]) -> list[Fit]:
    """The model against RAM and each GPU; empty when its size is unknown."""
    need = training_bytes(facts, batch, sequence)
    if need is None:
        return []
    out = [Fit("RAM", need, ram)]
    out += [Fit(f"GPU {g.index} ({g.name})", need, g.total_bytes) for g in gpus]
    return out
