"""DPO's loss and what it compares: each answer's summed log-probability under the tuned model and the reference.

loss = -log sigmoid(beta * ((logp_chosen - ref_chosen) - (logp_rejected - ref_rejected))), over answer tokens only.
The reference is the same model with its LoRA adapter disabled (peft's `disable_adapter()`), so no second copy of
the model is held; its log-probabilities are computed once per run, since the reference never changes.

Importing this module loads torch, transformers and peft: call _hf.prepare() first (train.run_training does).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from app.engine import cpu_training
from app.engine.data import Example
from app.engine.dpo_data import Pair, pair_rows
from app.engine.lora_model import Stepper
from app.engine.training_run import StepTotals


@dataclass
class Scored:
    """Summed log-probabilities of each chat's answer tokens (a tensor, with gradients when training) and, per
    chat, how many answer tokens the model would have predicted (argmax)."""

    logps: torch.Tensor
    correct: list[int]


def dpo_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-pair losses, chosen rewards, rejected rewards); a reward is beta * (logp - reference logp)."""
    chosen_rewards = beta * (chosen - ref_chosen)
    rejected_rewards = beta * (rejected - ref_rejected)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards)
    return losses, chosen_rewards.detach(), rejected_rewards.detach()


class SequenceScorer:
    """Answer log-probabilities of chats, through a Stepper's backbone and head (its CPU fast path included)."""

    def __init__(self, stepper: Stepper):
        self.stepper = stepper

    def score(self, examples: list[Example]) -> Scored:
        """Score examples in one forward: one packed row on a CPU, a right-padded batch on a GPU."""
        s = self.stepper
        if s.device == "cuda":
            input_ids, position_ids, extra, rows = self._padded(examples)
        else:
            input_ids, position_ids, extra, rows = self._packed(examples)
        with torch.autocast(s.device, dtype=s.dtype, enabled=s.dtype is not None):
            hidden = s.backbone(
                input_ids=input_ids, position_ids=position_ids, use_cache=False, **extra
            ).last_hidden_state
            picked = [hidden[b, idx] for b, idx, _ in rows]
            targets = [t for _, _, t in rows]
            if s.head_weight is not None and not s.softcap:
                # The chunked head loss, once per chat: its backward carries that chat's own weight in the loss.
                scored = [cpu_training.head_loss(h, s.head_weight, t) for h, t in zip(picked, targets, strict=True)]
                return Scored(torch.stack([-loss for loss, _ in scored]), [int(c) for _, c in scored])
            logits = s.head(torch.cat(picked)).float()
        if s.softcap:
            logits = torch.tanh(logits / s.softcap) * s.softcap
        every = torch.cat(targets)
        token_logps = torch.log_softmax(logits, dim=-1).gather(1, every.unsqueeze(1)).squeeze(1)
        hits = logits.detach().argmax(-1) == every
        sizes = [len(t) for t in targets]
        logps = torch.stack([part.sum() for part in token_logps.split(sizes)])
        return Scored(logps, [int(part.sum()) for part in hits.split(sizes)])

    def _packed(self, examples: list[Example]):
        """One row: the chats back to back, positions restarting at 0 (each attends only to itself)."""
        s = self.stepper
        ids: list[int] = []
        pos: list[int] = []
        rows = []
        for example in examples:
            offset = len(ids)
            n = len(example.input_ids)
            picked = [offset + t for t in range(n - 1) if example.trained[t + 1]]
            target = [example.input_ids[t + 1] for t in range(n - 1) if example.trained[t + 1]]
            rows.append((0, torch.tensor(picked), torch.tensor(target, device=s.device)))
            ids.extend(example.input_ids)
            pos.extend(range(n))
        lengths = tuple(len(e.input_ids) for e in examples)
        extra = {"packed_lengths": lengths} if s.packed else {}
        return torch.tensor([ids]), torch.tensor([pos]), extra, rows

    def _padded(self, examples: list[Example]):
        """A batch right-padded to one length: causal attention never lets a real token see the pads."""
        s = self.stepper
        width = -(-max(len(e.input_ids) for e in examples) // 8) * 8
        ids = [e.input_ids + [0] * (width - len(e.input_ids)) for e in examples]
        rows = []
        for b, example in enumerate(examples):
            n = len(example.input_ids)
            picked = [t for t in range(n - 1) if example.trained[t + 1]]
            target = [example.input_ids[t + 1] for t in picked]
            rows.append((b, torch.tensor(picked, device=s.device), torch.tensor(target, device=s.device)))
        return torch.tensor(ids, device=s.device), None, {}, rows


@dataclass
class PairTotals(StepTotals):
    """Sums over the pairs of a step or an evaluation (a StepTotals whose loss is DPO's, summed per pair, and whose
    correct/targets count the preferred answers' tokens); `means()` turns them into the reported metrics."""

    loss: float = 0.0
    correct: int = 0
    targets: int = 0
    pairs: int = 0
    chosen_reward: float = 0.0
    rejected_reward: float = 0.0
    wins: int = 0

    def add(self, losses: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor, correct: list[int], n: int):
        """Count one row's pairs (losses are the DPO term alone, so the reported loss stays comparable)."""
        self.pairs += len(chosen)
        self.loss += float(losses.detach().sum())
        self.chosen_reward += float(chosen.sum())
        self.rejected_reward += float(rejected.sum())
        self.wins += int((chosen > rejected).sum())
        self.correct += sum(correct)
        self.targets += n

    def sums(self) -> list[float]:
        """Every total as a number: what the ranks of a several-process run add up (from_sums reads it back)."""
        return [
            self.loss,
            self.correct,
            self.targets,
            self.pairs,
            self.chosen_reward,
            self.rejected_reward,
            self.wins,
        ]

    @classmethod
    def from_sums(cls, values: list[float]) -> PairTotals:
        """Totals from sums() added over the ranks (the counts rounded back to whole numbers)."""
        loss, correct, targets, pairs, chosen, rejected, wins = values
        return cls(
            loss=loss,
            correct=round(correct),
            targets=round(targets),
            pairs=round(pairs),
            chosen_reward=chosen,
            rejected_reward=rejected,
            wins=round(wins),
        )

    def means(self) -> dict[str, float]:
        """loss, token accuracy of the preferred answers, rewards, margin and the preference accuracy."""
        n = max(self.pairs, 1)
        chosen, rejected = self.chosen_reward / n, self.rejected_reward / n
        return {
            "loss": self.loss / n,
            "mean_token_accuracy": self.correct / max(self.targets, 1),
            "reward_chosen": chosen,
            "reward_rejected": rejected,
            "reward_margin": chosen - rejected,
            "reward_accuracy": self.wins / n,
        }


def reference_logps(
    model, scorer: SequenceScorer, pairs: list[Pair], row_tokens: int, indices: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) log-probabilities of every pair (or only those of `indices`, zeros elsewhere: a rank's
    share) under the base model: the adapter disabled, no gradients."""
    chosen = torch.zeros(len(pairs))
    rejected = torch.zeros(len(pairs))
    was_training = model.training
    model.eval()
    with model.disable_adapter(), torch.no_grad():
        for row in pair_rows(list(range(len(pairs))) if indices is None else indices, pairs, row_tokens):
            scored = scorer.score([pairs[i].chosen for i in row] + [pairs[i].rejected for i in row])
            logps = scored.logps.float().cpu()
            chosen[row], rejected[row] = logps[: len(row)], logps[len(row) :]
    if was_training:
        model.train()
    return chosen, rejected
