"""Each example's final loss, measured after the last step in one pass without gradients (file format:
loss_records.py). The examples with the highest loss are the ones the model could not learn: often mislabelled,
contradictory or simply wrong.

The pass scores examples the way training does (packed rows with per-example attention on a CPU, length buckets
on a GPU) but keeps the loss of every target token, then sums them per example.

Importing this module loads torch: call _hf.prepare() first (train.run_training does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from app.engine import protocol as p
from app.engine.cpu_training import HEAD_CHUNK
from app.engine.data import Dataset, Example, pack, segment_lengths
from app.engine.lora_model import Stepper, token_buckets
from app.engine.loss_records import LOSSES_FILE, TRAIN, VALIDATION, ExampleLoss, write_example_losses

TOP_IN_EVENT = 3  # the highest-loss training examples named in the announcing event


def record_final_losses(
    stepper: Stepper,
    train: Dataset,
    valid: Dataset | None,
    row_tokens: int,
    out_dir: Path,
    emit: p.Emit,
    check_stop: Callable[[], None],
) -> Path:
    """Score every training and validation example, write example_losses.jsonl and announce it with an event."""
    emit(p.event("Measuring each example's final loss."))
    losses = [
        ExampleLoss(split, example.line, total / example.n_trained, example.n_trained)
        for split, dataset in ((TRAIN, train), (VALIDATION, valid))
        if dataset is not None
        for example, total in zip(
            dataset.examples, example_loss_sums(stepper, dataset.examples, row_tokens, check_stop), strict=True
        )
    ]
    path = write_example_losses(Path(out_dir) / LOSSES_FILE, losses)
    highest = sorted((x for x in losses if x.split == TRAIN), key=lambda x: -x.loss)[:TOP_IN_EVENT]
    named = ", ".join(f"line {x.line + 1} ({x.loss:.2f})" for x in highest)
    n_valid = sum(x.split == VALIDATION for x in losses)
    emit(
        p.event(
            f"Recorded the final loss of {len(losses) - n_valid} training and {n_valid} validation examples; "
            f"the highest: {named}.",
            data={"example_losses": {"file": LOSSES_FILE, "train": len(losses) - n_valid, "validation": n_valid}},
        )
    )
    return path


def example_loss_sums(
    stepper: Stepper,
    examples: list[Example],
    row_tokens: int,
    check_stop: Callable[[], None] = lambda: None,
    padded: bool | None = None,
) -> list[float]:
    """Each example's summed loss over its trained tokens (nats), in the order given; no gradients.

    padded: right-padded length buckets (None: on CUDA, as training does there), else packed rows; check_stop()
    runs between rows and may raise to stop.
    """
    sums = [0.0] * len(examples)
    padded = stepper.device == "cuda" if padded is None else padded
    groups = _padded_groups if padded else _packed_groups
    stepper.model.eval()
    try:
        with torch.no_grad():
            for indices, inputs in groups(stepper, examples, row_tokens):
                check_stop()
                losses = token_losses(stepper, **inputs).double().cpu()
                counts = torch.tensor([examples[i].n_trained for i in indices])
                owner = torch.repeat_interleave(torch.arange(len(indices)), counts)
                per_example = torch.zeros(len(indices), dtype=torch.float64).index_add_(0, owner, losses)
                for i, total in zip(indices, per_example.tolist(), strict=True):
                    sums[i] = total
    finally:
        stepper.model.train()
    return sums


def _packed_groups(stepper: Stepper, examples: list[Example], row_tokens: int) -> Iterator[tuple[list[int], dict]]:
    """Packed rows as training packs them: each row's examples (indices, in row order) and token_losses' inputs."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i].input_ids))
    start = 0
    # pack() sorts by length too, stably: given them already sorted, its segments come in this order.
    for ids, pos, trained in pack([examples[i] for i in order], row_tokens):
        lengths = segment_lengths(pos)
        indices, start = order[start : start + len(lengths)], start + len(lengths)
        inputs = {
            "input_ids": torch.tensor([ids], device=stepper.device),
            "position_ids": torch.tensor([pos], device=stepper.device),
            "mask": [[*trained[1:], False]],
            "targets": [[*ids[1:], 0]],
        }
        if stepper.packed:
            inputs["packed_lengths"] = lengths
        yield indices, inputs


def _padded_groups(stepper: Stepper, examples: list[Example], row_tokens: int) -> Iterator[tuple[list[int], dict]]:
    """Right-padded length buckets as training on a GPU: each bucket's examples (indices, by row) and inputs."""
    index_of = {id(example): i for i, example in enumerate(examples)}
    for bucket in token_buckets(examples, row_tokens):
        width = max(len(e.input_ids) for e in bucket)
        ids = [e.input_ids + [0] * (width - len(e.input_ids)) for e in bucket]
        inputs = {
            "input_ids": torch.tensor(ids, device=stepper.device),
            "position_ids": None,
            "mask": [e.trained[1:] + [False] * (width - len(e.trained) + 1) for e in bucket],
            "targets": [[*row[1:], 0] for row in ids],
        }
        yield [index_of[id(e)] for e in bucket], inputs


def token_losses(
    stepper: Stepper,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor | None,
    mask: list[list[bool]],
    targets: list[list[int]],
    **extra: Any,
) -> torch.Tensor:
    """The loss of each target token (row-major), as Stepper scores them but unsummed: float32, on the device."""
    targets_mask = torch.tensor(mask, device=stepper.device)
    target_ids = torch.tensor(targets, device=stepper.device)[targets_mask]
    with torch.autocast(stepper.device, dtype=stepper.dtype, enabled=stepper.dtype is not None):
        hidden = stepper.backbone(
            input_ids=input_ids, position_ids=position_ids, use_cache=False, **extra
        ).last_hidden_state[targets_mask]
        if stepper.head_weight is not None and not stepper.softcap:
            return _chunked_losses(hidden, stepper.head_weight, target_ids)
        logits = stepper.head(hidden).float()
    if stepper.softcap:
        logits = torch.tanh(logits / stepper.softcap) * stepper.softcap
    return F.cross_entropy(logits, target_ids, reduction="none")


def _chunked_losses(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """cpu_training.head_loss's chunked head, each target's loss kept: the full logits are never held at once."""
    inputs = hidden.to(weight.dtype)
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], HEAD_CHUNK):
        rows = slice(start, start + HEAD_CHUNK)
        log_probs = torch.log_softmax(F.linear(inputs[rows], weight), dim=-1, dtype=torch.float32)
        out[rows] = -log_probs.gather(1, targets[rows].unsqueeze(1)).squeeze(1)
    return out
