"""The model a job trains: the base with fresh LoRA adapters, its loss on packed rows or padded batches (Stepper),
and its adapters saved to and restored from disk.

Importing this module loads torch, transformers and peft: call _hf.prepare() first (train.run_training does).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, cast

import torch
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, PreTrainedModel

from app.engine import cpu_training
from app.engine._hf import quiet
from app.engine.data import Example, pack, segment_lengths

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


def pick_device(requested: str) -> str:
    """ "cuda" when asked or available (for "auto"), else "cpu"."""
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu"


def autocast_dtype(device: str) -> torch.dtype | None:
    """bf16 where the hardware runs it fast (CUDA, or a CPU with AVX512-BF16/AMX), else None (float32)."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    capability = torch.backends.cpu.get_cpu_capability()
    fast = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or capability == "AVX512_BF16"
    return torch.bfloat16 if fast else None


def load_lora_model(base_path: Path, rank: int, device: str, seed: int) -> PeftModel:
    """The base model with fresh LoRA adapters on every linear layer of the decoder."""
    # On CUDA the frozen base weights are stored in bf16: autocast would otherwise re-cast every weight at every
    # step. The LoRA weights stay float32 (PEFT keeps adapters in float32), so the optimizer state is exact.
    base_dtype = autocast_dtype(device) if device == "cuda" else torch.float32
    with quiet():
        base = AutoModelForCausalLM.from_pretrained(base_path, dtype=base_dtype)
        torch.manual_seed(seed)
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
        )
        model = get_peft_model(base, config)
    return model.to(device)


def token_buckets(examples: list[Example], budget: int) -> list[list[Example]]:
    """Examples sorted by length, cut into micro-batches whose padded size (count x longest) fits the budget."""
    batches: list[list[Example]] = []
    current: list[Example] = []
    for example in sorted(examples, key=lambda e: len(e.input_ids)):
        if current and (len(current) + 1) * len(example.input_ids) > budget:
            batches.append(current)
            current = []
        current.append(example)
    if current:
        batches.append(current)
    return batches


class Stepper:
    """Loss and accuracy of packed rows: the LM head runs only on trained positions (the rest is never scored)."""

    def __init__(self, model: PeftModel, device: str, dtype: torch.dtype | None, packed: bool = False):
        inner = cast(PreTrainedModel, model.get_base_model())  # peft types it as any torch Module
        self.model, self.device, self.dtype = model, device, dtype
        self.backbone = inner.get_decoder()
        self.head = inner.get_output_embeddings()
        # packed: the model went through cpu_training.prepare; rows pass their examples' lengths to its attention,
        # and the head's loss runs in chunks against a bf16 copy of the head (the tied float32 embedding stays).
        self.packed = packed
        self.head_weight = cpu_training.head_weight(self.head, dtype) if packed else None
        # Gemma 2 squashes its logits (tanh(logits / cap) * cap) after the head: the loss must see what chat samples.
        self.softcap = getattr(inner.config, "final_logit_softcapping", None)

    def row_loss(self, ids: list[int], pos: list[int], trained: list[bool]) -> tuple[torch.Tensor, int, int]:
        """(summed loss tensor, n targets, n correct) for one packed row."""
        input_ids = torch.tensor([ids], device=self.device)
        position_ids = torch.tensor([pos], device=self.device)
        extra = {"packed_lengths": segment_lengths(pos)} if self.packed else {}
        loss, correct = self._score(input_ids, position_ids, [[*trained[1:], False]], [[*ids[1:], 0]], **extra)
        return loss, sum(trained[1:]), int(correct)

    def batch_loss(self, examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss tensor, correct tensor) of examples right-padded to one length, all on the device.

        With causal attention a real token never sees the trailing pads, so no mask is needed at all and SDPA
        keeps its flash kernels (a block-diagonal mask for packed rows forces its slow masked path on CUDA).
        Pads are never targets. Nothing here waits for the GPU: the caller syncs at its metrics cadence.
        """
        width = -(-max(len(e.input_ids) for e in examples) // 8) * 8  # multiples of 8 suit the tensor cores
        ids = [e.input_ids + [0] * (width - len(e.input_ids)) for e in examples]
        mask = [e.trained[1:] + [False] * (width - len(e.trained) + 1) for e in examples]
        targets = [[*row[1:], 0] for row in ids]
        input_ids = torch.tensor(ids, device=self.device)
        return self._score(input_ids, None, mask, targets)

    def _score(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor | None,
        mask: list[list[bool]],
        targets: list[list[int]],
        **extra: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        targets_mask = torch.tensor(mask, device=self.device)
        target_ids = torch.tensor(targets, device=self.device)[targets_mask]
        with torch.autocast(self.device, dtype=self.dtype, enabled=self.dtype is not None):
            hidden = self.backbone(
                input_ids=input_ids, position_ids=position_ids, use_cache=False, **extra
            ).last_hidden_state
            if self.head_weight is not None and not self.softcap:
                return cpu_training.head_loss(hidden[targets_mask], self.head_weight, target_ids)
            logits = self.head(hidden[targets_mask]).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        loss = torch.nn.functional.cross_entropy(logits, target_ids, reduction="sum")
        correct = (logits.detach().argmax(-1) == target_ids).sum()
        return loss, correct

    def evaluate(self, examples: list[Example], row_tokens: int) -> tuple[float | None, float | None]:
        """Mean loss and token accuracy over examples (no gradients)."""
        if not examples:
            return None, None
        self.model.eval()
        with torch.no_grad():
            if self.device == "cuda":
                scored = [self.batch_loss(bucket) for bucket in token_buckets(examples, row_tokens)]
                count = sum(e.n_trained for e in examples)
                total, correct = float(sum(loss for loss, _ in scored)), int(sum(c for _, c in scored))
            else:
                total, count, correct = 0.0, 0, 0
                for row in pack(examples, row_tokens):
                    loss, n, c = self.row_loss(*row)
                    total, count, correct = total + float(loss), count + n, correct + c
        self.model.train()
        return total / max(count, 1), correct / max(count, 1)


def save_adapter(model: PeftModel, optimizer: torch.optim.Optimizer | None, target: Path, state: dict) -> Path:
    """Write an adapter beside target, then rename: a reader never sees half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet():
        model.save_pretrained(str(tmp))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(state))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def read_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer state saved with a checkpoint (step, seed…); empty when there is none."""
    state_file = checkpoint / STATE_FILE
    return json.loads(state_file.read_text()) if state_file.exists() else {}


def restore_adapter(model: PeftModel, optimizer: torch.optim.Optimizer, checkpoint: Path) -> None:
    """Load a checkpoint's adapter weights into the model and, when saved, its optimizer state."""
    weights = load_file(str(checkpoint / "adapter_model.safetensors"))
    with quiet():
        set_peft_model_state_dict(model, weights)
    if (checkpoint / OPTIMIZER_FILE).exists():
        optimizer.load_state_dict(torch.load(checkpoint / OPTIMIZER_FILE, weights_only=True))
