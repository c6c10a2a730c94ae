"""Supervised LoRA fine-tuning of a causal LM on chat JSONL, reporting through protocol lines (see protocol.py)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from app.engine import protocol as p
from app.engine.data import (
    BASE_LEARNING_RATE,
    DataError,
    encode_dataset,
    epoch_batches,
    pack,
    read_jsonl,
    resolve_hyperparameters,
    segment_lengths,
    steps_per_epoch,
)

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
EVAL_SUBSET = 16  # examples of the validation file measured at the steady cadence (all of them at epoch ends)


class Cancelled(Exception):
    """should_stop() said so."""


def _settings(spec: p.TrainSpec) -> SimpleNamespace:
    """The two settings the catalog reads, without loading the app's config (and pydantic) in the child."""
    local = {k: Path(v) for k, v in spec.local_models.items()}
    return SimpleNamespace(data_dir=Path(spec.data_dir), local_models=local)


def pick_device(requested: str) -> str:
    """ "cuda" when asked or available (for "auto"), else "cpu"."""
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu"


def autocast_dtype(device: str):
    """bf16 where the hardware runs it fast (CUDA, or a CPU with AVX512-BF16/AMX), else None (float32)."""
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    capability = torch.backends.cpu.get_cpu_capability()
    fast = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or capability == "AVX512_BF16"
    return torch.bfloat16 if fast else None


def load_lora_model(base_path: Path, rank: int, device: str, seed: int):
    """The base model with fresh LoRA adapters on every linear layer of the decoder."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from app.engine._hf import quiet

    # On CUDA the frozen base weights are stored in bf16: autocast would otherwise re-cast every weight at every
    # step. The LoRA weights stay float32 (PEFT keeps adapters in float32), so the optimizer state is exact.
    base_dtype = autocast_dtype(device) if device == "cuda" else torch.float32
    with quiet():
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=base_dtype)
        torch.manual_seed(seed)
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
        )
        model = get_peft_model(model, config)
    return model.to(device)


class Stepper:
    """Loss and accuracy of packed rows: the LM head runs only on trained positions (the rest is never scored)."""

    def __init__(self, model, device: str, dtype, lean: bool = False):
        from app.engine import cpu_training as lora_fast

        inner = model.get_base_model()
        self.model, self.device, self.dtype = model, device, dtype
        self.backbone = inner.get_decoder()
        self.head = inner.get_output_embeddings()
        # lean: the model went through lora_fast.prepare; rows pass their examples' lengths to its attention, and
        # the head's loss runs in chunks against a bf16 copy of the head (the tied float32 embedding stays).
        self.packed = lean
        self.head_weight = lora_fast.head_weight(self.head, dtype) if lean else None

    def row_loss(self, ids: list[int], pos: list[int], trained: list[bool]):
        """(summed loss tensor, n targets, n correct) for one packed row."""
        import torch

        input_ids = torch.tensor([ids], device=self.device)
        position_ids = torch.tensor([pos], device=self.device)
        extra = {"packed_lengths": segment_lengths(pos)} if self.packed else {}
        loss, correct = self._score(input_ids, position_ids, [[*trained[1:], False]], [[*ids[1:], 0]], **extra)
        return loss, sum(trained[1:]), int(correct)

    def batch_loss(self, examples):
        """(summed loss tensor, correct tensor) of examples right-padded to one length, all on the device.

        With causal attention a real token never sees the trailing pads, so no mask is needed at all and SDPA
        keeps its flash kernels (a block-diagonal mask for packed rows forces its slow masked path on CUDA).
        Pads are never targets. Nothing here waits for the GPU: the caller syncs at its metrics cadence.
        """
        import torch

        width = -(-max(len(e.input_ids) for e in examples) // 8) * 8  # multiples of 8 suit the tensor cores
        ids = [e.input_ids + [0] * (width - len(e.input_ids)) for e in examples]
        mask = [e.trained[1:] + [False] * (width - len(e.trained) + 1) for e in examples]
        targets = [[*row[1:], 0] for row in ids]
        input_ids = torch.tensor(ids, device=self.device)
        return self._score(input_ids, None, mask, targets)

    def _score(self, input_ids, position_ids, mask: list[list[bool]], targets: list[list[int]], **extra):
        import torch

        from app.engine import cpu_training as lora_fast

        targets_mask = torch.tensor(mask, device=self.device)
        targets = torch.tensor(targets, device=self.device)[targets_mask]
        with torch.autocast(self.device, dtype=self.dtype, enabled=self.dtype is not None):
            hidden = self.backbone(
                input_ids=input_ids, position_ids=position_ids, use_cache=False, **extra
            ).last_hidden_state
            if self.head_weight is not None:
                return lora_fast.head_loss(hidden[targets_mask], self.head_weight, targets)
            logits = self.head(hidden[targets_mask]).float()
        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        correct = (logits.detach().argmax(-1) == targets).sum()
        return loss, correct

    def evaluate(self, examples, row_tokens: int) -> tuple[float | None, float | None]:
        """Mean loss and token accuracy over examples (no gradients)."""
        import torch

        if not examples:
            return None, None
        total, count, correct = 0.0, 0, 0
        self.model.eval()
        with torch.no_grad():
            if self.device == "cuda":
                for bucket in token_buckets(examples, row_tokens):
                    loss, c = self.batch_loss(bucket)
                    total, correct = total + loss, correct + c
                count = sum(e.n_trained for e in examples)
                total, correct = float(total), int(correct)
            else:
                for row in pack(examples, row_tokens):
                    loss, n, c = self.row_loss(*row)
                    total, count, correct = total + float(loss), count + n, correct + c
        self.model.train()
        return total / max(count, 1), correct / max(count, 1)


def token_buckets(examples, budget: int) -> list[list]:
    """Examples sorted by length, cut into micro-batches whose padded size (count x longest) fits the budget."""
    batches, current = [], []
    for example in sorted(examples, key=lambda e: len(e.input_ids)):
        if current and (len(current) + 1) * len(example.input_ids) > budget:
            batches.append(current)
            current = []
        current.append(example)
    if current:
        batches.append(current)
    return batches


def _save_adapter(model, optimizer, target: Path, state: dict) -> Path:
    """Write an adapter beside target, then rename: a reader never sees half of one."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    from app.engine._hf import quiet

    with quiet():
        model.save_pretrained(tmp)
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    (tmp / STATE_FILE).write_text(json.dumps(state))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def _restore(model, optimizer, checkpoint: Path) -> dict:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from app.engine._hf import quiet

    weights = load_file(str(checkpoint / "adapter_model.safetensors"))
    with quiet():
        set_peft_model_state_dict(model, weights)
    if (checkpoint / OPTIMIZER_FILE).exists():
        optimizer.load_state_dict(torch.load(checkpoint / OPTIMIZER_FILE, weights_only=True))
    state_file = checkpoint / STATE_FILE
    return json.loads(state_file.read_text()) if state_file.exists() else {}


def run_training(spec: p.TrainSpec | dict, emit: p.Emit, should_stop: Callable[[], bool] | None = None) -> str:
    """Train as the spec says, reporting through emit(); returns "succeeded", "cancelled" or "failed"."""
    try:
        spec = spec if isinstance(spec, p.TrainSpec) else p.TrainSpec.from_dict(spec)
        _train(spec, emit, should_stop or (lambda: False))
        return "succeeded"
    except Cancelled:
        emit(p.event("The job was cancelled.", level="warn"))
        return "cancelled"
    except DataError as exc:
        emit(p.error_line(p.ERROR_INVALID_FILE, str(exc)))
    except Exception as exc:  # a job must end with a readable error line, whatever went wrong
        code, message = _describe(exc)
        emit(p.error_line(code, message))
    return "failed"


def _describe(exc: BaseException) -> tuple[str, str]:
    from app.errors import DomainError

    if isinstance(exc, DomainError):
        return (p.ERROR_MODEL_NOT_FOUND if exc.code == "model_not_found" else exc.code), exc.message
    if isinstance(exc, MemoryError) or type(exc).__name__ in ("OutOfMemoryError",) or "out of memory" in str(exc):
        return p.ERROR_OUT_OF_MEMORY, (
            "The machine ran out of memory while training. Try a smaller batch size, a smaller LoRA rank "
            "or shorter examples."
        )
    if isinstance(exc, ValueError) and str(exc).startswith("SPEC"):
        return p.ERROR_INVALID_SPEC, str(exc)
    traceback.print_exc()  # stderr: diagnostics for the operator
    return p.ERROR_INTERNAL, f"Training crashed: {type(exc).__name__}: {exc}"


def _train(spec: p.TrainSpec, emit: p.Emit, should_stop: Callable[[], bool]) -> None:
    from app.engine import _hf

    _hf.prepare()
    import torch

    from app.engine import cpu_training as lora_fast
    from app.engine.catalog import resolve_base_model
    from app.engine.tokenizer import load_tokenizer

    torch.set_num_threads(os.cpu_count() or 1)
    out_dir = Path(spec.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    emit(p.event(f"Validating training file: {Path(spec.train_file).name}"))
    base_path = resolve_base_model(_settings(spec), spec.base_model, progress=lambda m: emit(p.event(m)))
    tokenizer = load_tokenizer(base_path)
    train = encode_dataset(tokenizer, read_jsonl(Path(spec.train_file)))
    if not train.examples:
        raise DataError("No example of the training file has an assistant message to learn from.")
    valid = encode_dataset(tokenizer, read_jsonl(Path(spec.validation_file))) if spec.validation_file else None
    n = len(train.examples)
    hyper = resolve_hyperparameters(spec.hyperparameters, n)
    n_epochs, batch_size = hyper["n_epochs"], hyper["batch_size"]
    per_epoch = steps_per_epoch(n, batch_size)
    total_steps = per_epoch * n_epochs
    billed = train.total_tokens * n_epochs
    emit(
        p.event(
            f"Training file has {n} examples, {train.total_tokens} tokens ({train.trained_tokens} trained); "
            f"{billed} tokens over {n_epochs} epochs.",
            data={"examples": n, "tokens": train.total_tokens, "trained_tokens": billed},
        )
    )
    if train.truncated:
        emit(p.event(f"{train.truncated} examples were longer than the limit and were cut.", level="warn"))
    if valid is not None:
        emit(p.event(f"Validation file has {len(valid.examples)} examples, {valid.total_tokens} tokens."))
    emit(p.hyperparameters_line(hyper, total_steps))

    resume = spec.resume_from or None
    state = {}
    if resume:
        state_file = Path(resume["checkpoint_dir"]) / STATE_FILE
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
    seed = spec.seed if spec.seed is not None else state.get("seed", random.SystemRandom().randrange(2**31))
    random.seed(seed)
    device = pick_device(spec.device)
    dtype = autocast_dtype(device)
    model = load_lora_model(base_path, hyper["lora_rank"], device, seed)
    params = [q for q in model.parameters() if q.requires_grad]
    lr = BASE_LEARNING_RATE * hyper["learning_rate_multiplier"]
    cuda = device == "cuda"
    # fused=True: one kernel for the whole update on CUDA instead of a dozen per parameter group.
    fast = {"fused": True} if cuda else {"foreach": True}
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, **fast)
    start_step = 0
    if resume:
        _restore(model, optimizer, Path(resume["checkpoint_dir"]))
        start_step = int(resume.get("step") or state.get("step") or 0)
        emit(p.event(f"Resumed from the checkpoint at step {start_step}."))
    # On a CPU a step's examples usually share one packed row (bigger matmuls, fewer calls; each example still
    # attends only to itself); a row takes ~3 s on 2 cores, so a cancel lands between rows (train_main's grace
    # timer covers a slower one).
    # On a GPU a step's micro-batches hold up to this many (padded) tokens, so small examples share one big
    # kernel launch instead of many small ones.
    row_tokens = 1024
    if cuda:
        row_tokens = 16384 if torch.cuda.get_device_properties(0).total_memory >= 20 * 2**30 else 4096
    lean = False if cuda else lora_fast.prepare(model, dtype)  # the CUDA path keeps PEFT's own forward
    stepper = Stepper(model, device, dtype, lean)
    model.train()
    log_every = max(1, total_steps // 100)
    eval_every = max(1, total_steps // 20)
    eval_subset = valid.examples[:EVAL_SUBSET] if valid else []
    result_file = out_dir / "result.csv"
    with result_file.open("a" if resume else "w", newline="") as handle:
        writer = csv.writer(handle)
        if not resume:
            writer.writerow(p.RESULT_COLUMNS)
        emit(p.event("Fine-tuning job started"))
        step = start_step
        started = time.monotonic()
        last_metrics: dict = {}
        for epoch in range(start_step // per_epoch, n_epochs):
            batches = epoch_batches(n, batch_size, seed, epoch)
            for index, batch in enumerate(batches):
                if epoch * per_epoch + index < start_step:
                    continue
                if should_stop():
                    raise Cancelled()
                optimizer.zero_grad(set_to_none=True)
                examples = [train.examples[i] for i in batch]
                n_targets = sum(e.n_trained for e in examples)
                loss_sum, correct = 0.0, 0
                if cuda:  # length buckets, right-padded, no mask; loss and accuracy stay on the GPU
                    for bucket in token_buckets(examples, row_tokens):
                        if should_stop():
                            raise Cancelled()
                        loss, c = stepper.batch_loss(bucket)
                        (loss / n_targets).backward()
                        loss_sum, correct = loss_sum + loss.detach(), correct + c
                else:
                    for row in pack(examples, row_tokens):
                        if should_stop():
                            raise Cancelled()
                        loss, _, c = stepper.row_loss(*row)
                        (loss / n_targets).backward()  # mean over the step's trained tokens, however packed
                        loss_sum, correct = loss_sum + float(loss.detach()), correct + c
                for group in optimizer.param_groups:  # linear decay; a function of the step, so resume needs no state
                    group["lr"] = lr * max(0.0, 1.0 - step / total_steps)
                optimizer.step()
                step += 1
                epoch_end = index == len(batches) - 1
                evaluate_now = bool(eval_subset) and step % eval_every == 0 and not epoch_end
                if not (step % log_every == 0 or epoch_end or step == total_steps or evaluate_now):
                    continue  # nothing to report: no host sync, the GPU runs ahead
                metrics = {
                    "step": step,
                    "total_steps": total_steps,
                    "train_loss": float(loss_sum) / n_targets,
                    "train_mean_token_accuracy": int(correct) / n_targets,
                    "valid_loss": None,
                    "valid_mean_token_accuracy": None,
                }
                if evaluate_now:
                    measured = stepper.evaluate(eval_subset, row_tokens)
                    metrics["valid_loss"], metrics["valid_mean_token_accuracy"] = measured
                if epoch_end and valid is not None:
                    measured = stepper.evaluate(valid.examples, row_tokens)
                    metrics["valid_loss"], metrics["valid_mean_token_accuracy"] = measured
                last_metrics = metrics
                emit(p.event(f"Step {step}/{total_steps}: training loss={metrics['train_loss']:.4f}"))
                emit(p.metrics_event(metrics))
                writer.writerow(
                    [
                        step,
                        metrics["train_loss"],
                        metrics["train_mean_token_accuracy"],
                        metrics["valid_loss"],
                        metrics["valid_mean_token_accuracy"],
                    ]
                )
                handle.flush()
                if epoch_end:
                    checkpoint = _save_adapter(
                        model,
                        optimizer,
                        out_dir / "checkpoints" / f"step-{step}",
                        {"step": step, "seed": seed, "base_model": spec.base_model, "epoch": epoch + 1},
                    )
                    emit(p.event(f"Epoch {epoch + 1}/{n_epochs} finished at step {step}."))
                    emit(p.checkpoint_line(step, checkpoint, metrics))
    elapsed = time.monotonic() - started
    final = _save_adapter(model, None, out_dir / "adapter", {"step": step, "seed": seed, "base_model": spec.base_model})
    emit(
        p.event(
            f"New fine-tuned model created: {spec.fine_tuned_model}",
            data={"seconds": round(elapsed, 1), "final_metrics": last_metrics},
        )
    )
    emit(p.result_line(final, billed, result_file))
    emit(p.event("The job has successfully completed"))
