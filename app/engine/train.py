"""LoRA fine-tuning of a causal LM on chat JSONL (supervised) or preference JSONL (DPO, dpo_run.py), reporting
through protocol lines (see protocol.py).

This is the entry point (run_training) and its error reporting; the run itself is training_run.TrainingRun and the
model lora_model.py, both loaded only once the Hugging Face libraries are prepared.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from app.engine import _hf
from app.engine import protocol as p
from app.engine.data import DataError
from app.errors import DomainError


def run_training(spec: p.TrainSpec | dict, emit: p.Emit, should_stop: Callable[[], bool] | None = None) -> str:
    """Train as the spec says, reporting through emit(); returns "succeeded", "cancelled" or "failed"."""
    try:
        spec = spec if isinstance(spec, p.TrainSpec) else p.TrainSpec.from_dict(spec)
        _hf.prepare(spec.engine_spin)
        # torch, transformers and peft load here, after prepare() set their environment.
        if spec.method == p.DPO:
            from app.engine.dpo_run import train
        else:
            from app.engine.training_run import train

        return train(spec, emit, should_stop or (lambda: False))
    except DataError as exc:
        emit(p.error_line(p.ERROR_INVALID_FILE, str(exc)))
    except Exception as exc:  # a job must end with a readable error line, whatever went wrong
        code, message = _describe(exc)
        emit(p.error_line(code, message))
    return "failed"


def _describe(exc: BaseException) -> tuple[str, str]:
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
