"""One DPO job: the supervised run's machinery (model, optimizer, batches, checkpoints, resume, cancel, result)
with preference pairs for data and DPO's loss (app/engine/dpo_loss.py) for steps, reports and evaluations.

Hyperparameters: n_epochs, batch_size (pairs per step), learning_rate_multiplier, lora_rank as for supervised jobs
(fewer epochs and a lower rate when "auto"), beta ("auto": 0.1) and sft_weight ("auto": 0; see
dpo_data.resolve_dpo_hyperparameters). Metrics: OpenAI's keys (the loss is DPO's, the token accuracy the preferred
answers') plus train_/valid_ reward_chosen, reward_rejected, reward_margin and reward_accuracy.

Importing this module loads torch and the Hugging Face libraries: call _hf.prepare() first (train.run_training does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from app.engine import distributed
from app.engine import protocol as p
from app.engine.catalog import resolve_base_model
from app.engine.data import DataError, epoch_batches, steps_per_epoch
from app.engine.dpo_data import (
    Pair,
    PairSet,
    encode_pairs,
    pair_rows,
    read_preference_jsonl,
    resolve_dpo_hyperparameters,
)
from app.engine.dpo_loss import PairTotals, SequenceScorer, dpo_loss, reference_logps
from app.engine.tokenizer import load_tokenizer
from app.engine.training_run import EVAL_SUBSET, Cancelled, SpecSettings, StepTotals, TrainingRun


def train(spec: p.TrainSpec, emit: p.Emit, should_stop: Callable[[], bool]) -> str:
    """Run the DPO job; "succeeded", or "cancelled" when should_stop() said so (no final adapter then)."""
    ranks = distributed.Ranks(distributed.RankEnv.from_environ())  # one process unless started as several ranks
    try:
        DpoRun(spec, emit, should_stop, ranks).run()
    except Cancelled:
        if ranks.lead:
            emit(p.event("The job was cancelled.", level="warn"))
        ranks.leave()
        return "cancelled"
    ranks.leave()  # not after an error: a group that lost a rank may hang in its teardown
    return "succeeded"


class DpoRun(TrainingRun):
    """A TrainingRun whose examples are preference pairs and whose loss is DPO's.

    On several processes (distributed.py) each rank scores its share of every step's pairs (and of the reference
    and validation passes), scaled by the step's global pair count; one all-reduce per step sums the gradients
    and the PairTotals, so every rank steps alike and rank 0 reports the global figures.
    """

    pairs: PairSet
    valid_pairs: PairSet | None

    def _prepare_data(self) -> None:
        """Resolve the base model, encode the pairs, settle the hyperparameters and say what will be trained."""
        spec, emit = self.spec, self.emit
        torch.set_num_threads(self.ranks.threads())
        self.out_dir.mkdir(parents=True, exist_ok=True)
        emit(p.event(f"Validating training file: {Path(spec.train_file).name}"))
        settings = SpecSettings(Path(spec.data_dir), {k: Path(v) for k, v in spec.local_models.items()})
        self.base_path = resolve_base_model(settings, spec.base_model, progress=lambda m: emit(p.event(m)))
        tokenizer = load_tokenizer(self.base_path)
        self.pairs = encode_pairs(tokenizer, read_preference_jsonl(Path(spec.train_file)))
        if not self.pairs.pairs:
            raise DataError("No example of the training file has two answers with text to compare.")
        self.valid_pairs = None
        if spec.validation_file:
            self.valid_pairs = encode_pairs(tokenizer, read_preference_jsonl(Path(spec.validation_file)))
        n = len(self.pairs.pairs)
        self.hyper = resolve_dpo_hyperparameters(spec.hyperparameters, n)
        self.beta, self.sft_weight = self.hyper["beta"], self.hyper["sft_weight"]
        self.n_epochs, self.batch_size = self.hyper["n_epochs"], self.hyper["batch_size"]
        self.per_epoch = steps_per_epoch(n, self.batch_size)
        self.total_steps = self.per_epoch * self.n_epochs
        self.billed = self.pairs.total_tokens * self.n_epochs
        emit(
            p.event(
                f"Training file has {n} preference pairs, {self.pairs.total_tokens} tokens "
                f"({self.pairs.trained_tokens} in the answers); {self.billed} tokens over {self.n_epochs} epochs.",
                data={"examples": n, "tokens": self.pairs.total_tokens, "trained_tokens": self.billed},
            )
        )
        if self.pairs.truncated:
            emit(p.event(f"{self.pairs.truncated} pairs were longer than the limit and were cut.", level="warn"))
        valid = self.valid_pairs
        if valid is not None:
            emit(p.event(f"Validation file has {len(valid.pairs)} pairs, {valid.total_tokens} tokens."))
        emit(p.hyperparameters_line(self.hyper, self.total_steps))
        self.log_every = max(1, self.total_steps // 100)
        self.eval_every = max(1, self.total_steps // 20)
        self.eval_pairs: list[int] = list(range(min(EVAL_SUBSET, len(valid.pairs)))) if valid else []

    def _prepare_model(self) -> None:
        """The supervised preparation, then the reference's log-probabilities of every pair (adapter disabled)."""
        super()._prepare_model()
        self.scorer = SequenceScorer(self.stepper)
        self.emit(p.event("Scoring the answers with the base model (the reference)."))
        self.reference = self._reference(self.pairs.pairs)
        valid = self.valid_pairs
        self.valid_reference = self._reference(valid.pairs) if valid else None

    def _reference(self, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pair's reference log-probabilities: each rank scores its share, the sum gives every rank all."""
        mine = self._share(list(range(len(pairs))), pairs)
        chosen, rejected = reference_logps(self.model, self.scorer, pairs, self.row_tokens, mine)
        both = self.ranks.sum_tensor(torch.stack([chosen, rejected]))
        return both[0], both[1]

    def _share(self, indices: list[int], pairs: list[Pair]) -> list[int]:
        """This rank's part of the pair indices (all of them in one process), balanced by tokens."""
        return self.ranks.share_by(indices, lambda i: pairs[i].n_tokens)

    # -- the loop --------------------------------------------------------------------------------------------------
    def _remaining_batches(self) -> Iterator[tuple[int, list[int], bool]]:
        """(epoch, pair indices, whether it ends its epoch) for every step not done yet, in a resumable order."""
        start_step = self.step
        for epoch in range(start_step // self.per_epoch, self.n_epochs):
            batches = epoch_batches(len(self.pairs.pairs), self.batch_size, self.seed, epoch)
            for index, batch in enumerate(batches):
                if epoch * self.per_epoch + index >= start_step:
                    yield epoch, batch, index == len(batches) - 1

    def _batch_lines(self, batch: list[int]) -> list[int] | None:
        return None  # a pair's loss is not a per-example loss: no batch log, no loss spikes named by batch

    def _record_final_losses(self) -> None:
        pass  # the examples the model could not learn are a supervised notion (issue #21); pairs have margins

    def _step(self, batch: list[int]) -> PairTotals:
        """One optimizer step over a batch of pairs; each row's backward runs before the next row is computed."""
        self.optimizer.zero_grad(set_to_none=True)
        # Both chats of every pair of the global batch, as the supervised step counts its rows: the finish event's
        # tokens_per_second (and the measured speed the model list shows) read it.
        self.tokens_seen += sum(self.pairs.pairs[i].n_tokens for i in batch)
        mine = self._share(batch, self.pairs.pairs)
        totals = self._pairs_loss(self.pairs.pairs, self.reference, mine, train=True, step_pairs=len(batch))
        if self.ranks.parallel:
            sums, stop = self.ranks.reduce_sums(self.params, totals.sums(), self.should_stop)
            totals = PairTotals.from_sums(sums)
            if stop:
                raise Cancelled()
        for group in self.optimizer.param_groups:  # linear decay, as the supervised run
            group["lr"] = self.lr * max(0.0, 1.0 - self.step / self.total_steps)
        self.optimizer.step()
        self.step += 1
        return totals

    def _pairs_loss(
        self,
        pairs: list[Pair],
        reference: tuple[torch.Tensor, torch.Tensor],
        batch: list[int],
        *,
        train: bool,
        step_pairs: int = 0,
    ) -> PairTotals:
        """DPO's loss over the batch's pairs, row by row (backward per row when training, each loss divided by
        step_pairs: the whole step's pair count, on every rank); their totals."""
        totals = PairTotals()
        for row in pair_rows(batch, pairs, self.row_tokens):
            self._stop_if_asked()
            chosen = [pairs[i].chosen for i in row]
            scored = self.scorer.score(chosen + [pairs[i].rejected for i in row])
            logps, k = scored.logps.float(), len(row)
            ref_chosen, ref_rejected = (r[row].to(logps.device) for r in reference)
            losses, rewards_chosen, rewards_rejected = dpo_loss(
                logps[:k], logps[k:], ref_chosen, ref_rejected, self.beta
            )
            n_chosen = sum(e.n_trained for e in chosen)
            totals.add(losses, rewards_chosen.cpu(), rewards_rejected.cpu(), scored.correct[:k], n_chosen)
            if train:
                loss = losses.sum()
                if self.sft_weight:
                    counts = torch.tensor([e.n_trained for e in chosen], device=logps.device)
                    loss = loss + self.sft_weight * (-logps[:k] / counts).sum()
                (loss / step_pairs).backward()  # mean over the step's pairs, however grouped or shared out
        return totals

    # -- reports and evaluations -----------------------------------------------------------------------------------
    def _report(self, totals: StepTotals, epoch_end: bool) -> dict[str, Any] | None:
        """The step's metrics when one is due (every log_every steps, at evaluations and epoch ends), else None."""
        assert isinstance(totals, PairTotals)  # what this run's _step returns
        step = self.step
        evaluate_now = bool(self.eval_pairs) and step % self.eval_every == 0 and not epoch_end
        if not (step % self.log_every == 0 or epoch_end or step == self.total_steps or evaluate_now):
            return None
        metrics: dict[str, Any] = {"step": step, "total_steps": self.total_steps}
        metrics.update({f"train_{k}": v for k, v in totals.means().items()})
        measured = self._evaluate_pairs(evaluate_now, epoch_end)
        for key in ("loss", "mean_token_accuracy", *p.DPO_METRIC_KEYS):
            metrics[f"valid_{key}"] = measured[key] if measured else None
        self.last_metrics = metrics
        if step > self.reported_step:
            self.emit(
                p.event(
                    f"Step {step}/{self.total_steps}: training loss={metrics['train_loss']:.4f}, "
                    f"reward margin={metrics['train_reward_margin']:.4f}, "
                    f"preference accuracy={metrics['train_reward_accuracy']:.2f}"
                )
            )
            self.emit(p.metrics_event(metrics))
        return metrics

    def _evaluate_pairs(self, evaluate_now: bool, epoch_end: bool) -> dict[str, float] | None:
        """Validation means: every pair at an epoch's end, a subset at the steady cadence, else None."""
        if self.valid_pairs is None or self.valid_reference is None or not (epoch_end or evaluate_now):
            return None
        chosen = list(range(len(self.valid_pairs.pairs))) if epoch_end else self.eval_pairs
        mine = self._share(chosen, self.valid_pairs.pairs)
        self.model.eval()
        with torch.no_grad():
            totals = self._pairs_loss(self.valid_pairs.pairs, self.valid_reference, mine, train=False)
        self.model.train()
        if self.ranks.parallel:  # every rank evaluates at the same steps: sum their shares' totals
            summed = self.ranks.sum_tensor(torch.tensor(totals.sums(), dtype=torch.float64))
            totals = PairTotals.from_sums(summed.tolist())
        return totals.means()
