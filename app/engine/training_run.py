"""One training job from its spec to its final adapter: prepare, then steps, evaluations, checkpoints and reports.

Importing this module loads torch and the Hugging Face libraries: call _hf.prepare() first (train.run_training does).
"""

from __future__ import annotations

import csv
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.engine import cpu_training, distributed
from app.engine import protocol as p
from app.engine.catalog import resolve_base_model
from app.engine.data import (
    BASE_LEARNING_RATE,
    DataError,
    Dataset,
    Example,
    encode_dataset,
    epoch_batches,
    pack,
    read_jsonl,
    resolve_hyperparameters,
    steps_per_epoch,
)
from app.engine.example_losses import record_final_losses
from app.engine.lora_model import (
    Stepper,
    autocast_dtype,
    load_lora_model,
    pick_device,
    read_state,
    restore_adapter,
    save_adapter,
    token_buckets,
)
from app.engine.loss_records import BatchLog
from app.engine.tokenizer import load_tokenizer

EVAL_SUBSET = 16  # examples of the validation file measured at the steady cadence (all of them at epoch ends)
# On a CPU a step's examples usually share one packed row (bigger matmuls, fewer calls; each example still attends
# only to itself); a row takes ~3 s on 2 cores, so a cancel lands between rows (train_main's grace timer covers a
# slower one). On a GPU a step's micro-batches hold up to this many (padded) tokens, so small examples share one
# big kernel launch instead of many small ones.
CPU_ROW_TOKENS = 1024
GPU_ROW_TOKENS, SMALL_GPU_ROW_TOKENS = 16384, 4096  # 20 GiB of GPU memory or more / less


class Cancelled(Exception):
    """should_stop() said so."""


@dataclass(frozen=True)
class SpecSettings:
    """The settings the catalog reads, from the spec: the training process never loads the app's config."""

    data_dir: Path
    local_models: dict[str, Path]


@dataclass
class StepTotals:
    """One optimizer step's summed loss and correct tokens (tensors still on the GPU there) over its targets."""

    loss: Any
    correct: Any
    targets: int


def train(spec: p.TrainSpec, emit: p.Emit, should_stop: Callable[[], bool]) -> str:
    """Run the job; "succeeded", or "cancelled" when should_stop() said so (no final adapter then)."""
    ranks = distributed.Ranks(distributed.RankEnv.from_environ())  # one process unless started as several ranks
    try:
        TrainingRun(spec, emit, should_stop, ranks).run()
    except Cancelled:
        if ranks.lead:
            emit(p.event("The job was cancelled.", level="warn"))
        ranks.leave()
        return "cancelled"
    ranks.leave()  # not after an error: a group that lost a rank may hang in its teardown
    return "succeeded"


class TrainingRun:
    """A job's data, model and optimizer, and where its loop stands (step, last metrics)."""

    def __init__(
        self,
        spec: p.TrainSpec,
        emit: p.Emit,
        should_stop: Callable[[], bool],
        ranks: distributed.Ranks | None = None,
    ):
        self.spec, self.emit, self.should_stop = spec, emit, should_stop
        self.ranks = ranks or distributed.Ranks()
        if not self.ranks.lead:
            self.emit = _silent  # rank 0 alone reports
        self.out_dir = Path(spec.output_dir)
        self.result_file = self.out_dir / "result.csv"
        self.checkpoint = Path(spec.resume_from["checkpoint_dir"]) if spec.resume_from else None
        # An earlier attempt may have run (and reported) past its last checkpoint: those steps are trained again
        # from the checkpoint but not reported twice.
        self.reported_step = int((spec.resume_from or {}).get("reported_step") or 0)
        self.step = 0
        self.last_metrics: dict[str, Any] = {}
        self.tokens_seen = 0  # tokens of the steps this attempt trained, for its tokens/s

    def run(self) -> None:
        """Prepare, train every remaining step (reporting, evaluating and checkpointing as due), then finish."""
        self._prepare_data()
        self._prepare_model()
        self._start_result_file()
        # Each step's training lines, so a loss spike names its batch (the lead process writes the job's files).
        batches = BatchLog(self.out_dir, self.step) if self.ranks.lead else None
        with (self.result_file if self.ranks.lead else Path(os.devnull)).open("a", newline="") as handle:
            results = csv.writer(handle)
            self.emit(p.event("Fine-tuning job started"))
            started = time.monotonic()
            for epoch, batch, epoch_end in self._remaining_batches():
                self._stop_if_asked()
                totals = self._step(batch)
                lines = self._batch_lines(batch)
                if batches is not None and lines is not None:
                    batches.record(self.step, lines)
                metrics = self._report(totals, epoch_end)
                if metrics is None:
                    continue  # nothing due: no host sync, the GPU runs ahead
                results.writerow(
                    [
                        metrics["step"],
                        metrics["train_loss"],
                        metrics["train_mean_token_accuracy"],
                        metrics["valid_loss"],
                        metrics["valid_mean_token_accuracy"],
                    ]
                )
                handle.flush()
                if epoch_end:
                    self._checkpoint(epoch, metrics)
        if self.ranks.lead:  # the adapters are equal on every process: one scores the examples
            self._record_final_losses()
        self._finish(time.monotonic() - started)

    def _batch_lines(self, batch: list[int]) -> list[int] | None:
        """The training file's lines of a step's examples, for the batch log (None: not logged)."""
        return [self.train.examples[i].line for i in batch]

    def _record_final_losses(self) -> None:
        """Score every training and validation example once training is done (example_losses.jsonl)."""
        record_final_losses(
            self.stepper, self.train, self.valid, self.row_tokens, self.out_dir, self.emit, self._stop_if_asked
        )

    # -- prepare ---------------------------------------------------------------------------------------------------
    def _prepare_data(self) -> None:
        """Resolve the base model, encode the files, settle the hyperparameters and say what will be trained."""
        spec, emit = self.spec, self.emit
        torch.set_num_threads(self.ranks.threads())
        self.out_dir.mkdir(parents=True, exist_ok=True)
        emit(p.event(f"Validating training file: {Path(spec.train_file).name}"))
        settings = SpecSettings(Path(spec.data_dir), {k: Path(v) for k, v in spec.local_models.items()})
        self.base_path = resolve_base_model(settings, spec.base_model, progress=lambda m: emit(p.event(m)))
        tokenizer = load_tokenizer(self.base_path)
        self.train: Dataset = encode_dataset(tokenizer, read_jsonl(Path(spec.train_file)))
        if not self.train.examples:
            raise DataError("No example of the training file has an assistant message to learn from.")
        self.valid: Dataset | None = None
        if spec.validation_file:
            self.valid = encode_dataset(tokenizer, read_jsonl(Path(spec.validation_file)))
        n = len(self.train.examples)
        self.hyper = resolve_hyperparameters(spec.hyperparameters, n)
        self.n_epochs, self.batch_size = self.hyper["n_epochs"], self.hyper["batch_size"]
        self.per_epoch = steps_per_epoch(n, self.batch_size)
        self.total_steps = self.per_epoch * self.n_epochs
        self.billed = self.train.total_tokens * self.n_epochs
        emit(
            p.event(
                f"Training file has {n} examples, {self.train.total_tokens} tokens "
                f"({self.train.trained_tokens} trained); {self.billed} tokens over {self.n_epochs} epochs.",
                data={"examples": n, "tokens": self.train.total_tokens, "trained_tokens": self.billed},
            )
        )
        if self.train.truncated:
            emit(p.event(f"{self.train.truncated} examples were longer than the limit and were cut.", level="warn"))
        if self.valid is not None:
            emit(p.event(f"Validation file has {len(self.valid.examples)} examples, {self.valid.total_tokens} tokens."))
        emit(p.hyperparameters_line(self.hyper, self.total_steps))
        self.log_every = max(1, self.total_steps // 100)
        self.eval_every = max(1, self.total_steps // 20)
        self.eval_subset: list[Example] = self.valid.examples[:EVAL_SUBSET] if self.valid else []

    def _prepare_model(self) -> None:
        """Seed, load the model with fresh adapters and its optimizer, restore a checkpoint when resuming."""
        spec = self.spec
        state = read_state(self.checkpoint) if self.checkpoint else {}
        self.seed = spec.seed if spec.seed is not None else state.get("seed", random.SystemRandom().randrange(2**31))
        device = self.ranks.join(pick_device(spec.device))
        self.seed = self.ranks.same_seed(self.seed)
        random.seed(self.seed)
        dtype = autocast_dtype(device)
        self.cuda = device == "cuda"
        self.model = load_lora_model(self.base_path, self.hyper["lora_rank"], device, self.seed)
        params = [q for q in self.model.parameters() if q.requires_grad]
        self.ranks.same_parameters(params)
        self.params = params
        self.lr = BASE_LEARNING_RATE * self.hyper["learning_rate_multiplier"]
        # fused: one kernel for the whole update on CUDA instead of a dozen per parameter group.
        self.optimizer = torch.optim.AdamW(
            params, lr=self.lr, weight_decay=0.0, fused=True if self.cuda else None, foreach=None if self.cuda else True
        )
        if self.checkpoint is not None:
            restore_adapter(self.model, self.optimizer, self.checkpoint)
            self.step = int((spec.resume_from or {}).get("step") or state.get("step") or 0)
            again = ""
            if self.reported_step > self.step:
                again = f" Steps {self.step + 1}-{self.reported_step} run again and are not reported twice."
            self.emit(p.event(f"Resumed from the checkpoint at step {self.step}.{again}"))
        self.row_tokens = CPU_ROW_TOKENS
        if self.cuda:
            big = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory >= 20 * 2**30
            self.row_tokens = GPU_ROW_TOKENS if big else SMALL_GPU_ROW_TOKENS
        packed = False if self.cuda else cpu_training.prepare(self.model, dtype)  # CUDA keeps PEFT's own forward
        self.stepper = Stepper(self.model, device, dtype, packed)
        self.model.train()

    def _start_result_file(self) -> None:
        """A fresh result.csv, or on resume the rows up to the checkpoint's step (later ones are trained again)."""
        if not self.ranks.lead:
            return
        kept: list[list[str]] = []
        if self.checkpoint is not None and self.result_file.exists():
            seen: set[int] = set()
            with self.result_file.open(newline="") as handle:
                for row in csv.reader(handle):
                    step = int(row[0]) if row and row[0].isdigit() else None
                    if step is not None and step <= self.step and step not in seen:
                        seen.add(step)
                        kept.append(row)
        partial = self.result_file.with_name(self.result_file.name + ".tmp")
        with partial.open("w", newline="") as handle:
            results = csv.writer(handle)
            results.writerow(p.RESULT_COLUMNS)
            results.writerows(kept)
        partial.replace(self.result_file)  # a kill mid-write leaves the old file, never half a one

    # -- the loop --------------------------------------------------------------------------------------------------
    def _remaining_batches(self) -> Iterator[tuple[int, list[int], bool]]:
        """(epoch, example indices, whether it ends its epoch) for every step not done yet, in a resumable order."""
        start_step = self.step
        for epoch in range(start_step // self.per_epoch, self.n_epochs):
            batches = epoch_batches(len(self.train.examples), self.batch_size, self.seed, epoch)
            for index, batch in enumerate(batches):
                if epoch * self.per_epoch + index >= start_step:
                    yield epoch, batch, index == len(batches) - 1

    def _stop_if_asked(self) -> None:
        # Several ranks stop together, at a step's all-reduce (_step), never one alone in mid-step.
        if self.should_stop() and not self.ranks.parallel:
            raise Cancelled()

    def _step(self, batch: list[int]) -> StepTotals:
        """One optimizer step: gradients of every row (CPU) or length bucket (GPU) of the batch, then the update."""
        self.optimizer.zero_grad(set_to_none=True)
        examples = [self.train.examples[i] for i in batch]
        n_targets = sum(e.n_trained for e in examples)  # the global batch's, on every rank
        self.tokens_seen += sum(len(e.input_ids) for e in examples)
        examples = self.ranks.share(examples)
        totals = self._backward_buckets(examples, n_targets) if self.cuda else self._backward_rows(examples, n_targets)
        if self.ranks.parallel:
            totals.loss, totals.correct, stop = self.ranks.reduce_step(
                self.params, totals.loss, totals.correct, self.should_stop
            )
            if stop:
                raise Cancelled()
        for group in self.optimizer.param_groups:  # linear decay; a function of the step, so resume needs no state
            group["lr"] = self.lr * max(0.0, 1.0 - self.step / self.total_steps)
        self.optimizer.step()
        self.step += 1
        return totals

    def _backward_rows(self, examples: list[Example], n_targets: int) -> StepTotals:
        """CPU: packed rows, loss and accuracy read back after each."""
        loss_sum, correct = 0.0, 0
        for row in pack(examples, self.row_tokens):
            self._stop_if_asked()
            loss, _, c = self.stepper.row_loss(*row)
            (loss / n_targets).backward()  # mean over the step's trained tokens, however packed
            loss_sum, correct = loss_sum + float(loss.detach()), correct + c
        return StepTotals(loss_sum, correct, n_targets)

    def _backward_buckets(self, examples: list[Example], n_targets: int) -> StepTotals:
        """GPU: length buckets, right-padded, no mask; loss and accuracy stay on the GPU until reported."""
        loss_sum: Any = 0.0
        correct: Any = 0
        for bucket in token_buckets(examples, self.row_tokens):
            self._stop_if_asked()
            loss, c = self.stepper.batch_loss(bucket)
            (loss / n_targets).backward()
            loss_sum, correct = loss_sum + loss.detach(), correct + c
        return StepTotals(loss_sum, correct, n_targets)

    # -- reports, evaluations, checkpoints -------------------------------------------------------------------------
    def _report(self, totals: StepTotals, epoch_end: bool) -> dict[str, Any] | None:
        """The step's metrics when one is due (every log_every steps, at evaluations and epoch ends), else None."""
        step = self.step
        evaluate_now = bool(self.eval_subset) and step % self.eval_every == 0 and not epoch_end
        if not (step % self.log_every == 0 or epoch_end or step == self.total_steps or evaluate_now):
            return None
        metrics = {
            "step": step,
            "total_steps": self.total_steps,
            "train_loss": float(totals.loss) / totals.targets,
            "train_mean_token_accuracy": int(totals.correct) / totals.targets,
        }
        metrics["valid_loss"], metrics["valid_mean_token_accuracy"] = self._evaluate(evaluate_now, epoch_end)
        self.last_metrics = metrics
        if step > self.reported_step:
            self.emit(p.event(f"Step {step}/{self.total_steps}: training loss={metrics['train_loss']:.4f}"))
            self.emit(p.metrics_event(metrics))
        return metrics

    def _evaluate(self, evaluate_now: bool, epoch_end: bool) -> tuple[float | None, float | None]:
        """Validation loss and accuracy: the whole file at an epoch's end, a subset at the steady cadence."""

        def evaluate(examples: list[Example]) -> tuple[float | None, float | None]:
            return self.stepper.evaluate(examples, self.row_tokens)

        if epoch_end and self.valid is not None:
            return self.ranks.evaluate(evaluate, self.valid.examples)
        if evaluate_now:
            return self.ranks.evaluate(evaluate, self.eval_subset)
        return None, None

    def _checkpoint(self, epoch: int, metrics: dict[str, Any]) -> None:
        """Save the adapter and optimizer at an epoch's end, then announce it (only once it is fully written)."""
        if not self.ranks.lead:
            return
        state = {"step": self.step, "seed": self.seed, "base_model": self.spec.base_model, "epoch": epoch + 1}
        target = self.out_dir / "checkpoints" / f"step-{self.step}"
        checkpoint = save_adapter(self.model, self.optimizer, target, state)
        self.emit(p.event(f"Epoch {epoch + 1}/{self.n_epochs} finished at step {self.step}."))
        self.emit(p.checkpoint_line(self.step, checkpoint, metrics))

    def _finish(self, elapsed: float) -> None:
        """Save the final adapter and report the result (with this attempt's training tokens/s)."""
        if not self.ranks.lead:
            return
        state = {"step": self.step, "seed": self.seed, "base_model": self.spec.base_model}
        final = save_adapter(self.model, None, self.out_dir / "adapter", state)
        self.emit(
            p.event(
                f"New fine-tuned model created: {self.spec.fine_tuned_model}",
                data={
                    "seconds": round(elapsed, 1),
                    "final_metrics": self.last_metrics,
                    "tokens_per_second": round(self.tokens_seen / elapsed, 1) if elapsed > 0 else None,
                    "processes": self.ranks.world_size,
                    "device": "cuda" if self.cuda else "cpu",
                },
            )
        )
        self.emit(p.result_line(final, self.billed, self.result_file))
        self.emit(p.event("The job has successfully completed"))


def _silent(obj: dict) -> None:
    """The emit() of a rank other than 0: rank 0 reports for every rank."""
