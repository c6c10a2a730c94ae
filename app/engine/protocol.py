"""The contract between a job runner and `python -m app.engine.train_main SPEC.json` (no torch here).

SPEC.json (written by the parent, read by the child):
    {"job_id", "base_model", "fine_tuned_model" ("ft:<base>:<suffix>:<job id>"), "train_file" (abs JSONL),
     "validation_file" (abs or null), "output_dir" (abs: checkpoints/, adapter/, result.csv are written here),
     "hyperparameters": {"n_epochs", "batch_size", "learning_rate_multiplier", "lora_rank"} (number or "auto"),
     "seed" (int or null), "resume_from": {"checkpoint_dir", "step", "reported_step"} or null, "data_dir",
     "local_models" {name: path}, "device": "auto" | "cpu" | "cuda",
     "engine_spin": "auto" | "on" | "off" (how idle OpenMP threads wait: Settings.engine_spin; default "auto"),
     "method": "supervised" | "dpo" (default "supervised"; a DPO job's files are OpenAI's DPO JSONL and its
     hyperparameters add "beta" and "sft_weight", see app/engine/dpo_run.py)}

Several processes (data-parallel, app/engine/distributed.py): started with torchrun's variables (RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), every rank reads the same SPEC.json; rank 0 alone prints
the lines below and writes result.csv, checkpoints and the adapter. SIGTERM must reach every rank.

stdout, one JSON object per line, flushed after each:
    {"kind": "event", "level": "info"|"warn"|"error", "type": "message"|"metrics", "message": str, "data": dict|null}
    {"kind": "hyperparameters", "values": {n_epochs, batch_size, learning_rate_multiplier, lora_rank},
     "total_steps": int}
    {"kind": "checkpoint", "step": int, "path": abs adapter dir, "metrics": {...}}   (after it is fully written)
    {"kind": "result", "adapter_path": abs, "trained_tokens": int, "result_file": abs csv}
    {"kind": "error", "code": str, "message": str}                                   (then exit code 1)
After the last step an event whose data holds {"example_losses": {"file", "train", "validation"}} says that the
output dir's example_losses.jsonl is written (each example's final loss; batches.jsonl: each step's training lines;
both described in loss_records.py).
Anything else on stdout/stderr is diagnostics; a parent should ignore lines that are not JSON objects.

Resuming: training goes on from the checkpoint's "step"; the steps up to "reported_step" (the last step whose
metrics the parent already recorded, an earlier attempt having run past the checkpoint) are trained again but not
reported again, and result.csv keeps its rows up to the checkpoint's step, so every step is reported once.

Exit codes: 0 success, 1 failure (an error line was printed), 143 stopped by SIGTERM (at a step boundary).
Metrics data: {step, total_steps, train_loss, train_mean_token_accuracy, valid_loss, valid_mean_token_accuracy};
valid_* are null when not measured at that step. result.csv columns: RESULT_COLUMNS.
A DPO job's metrics add train_/valid_ + DPO_METRIC_KEYS (rewards of the preferred and the other answer, their
margin, the share of pairs where the preferred one wins); its losses are DPO's, its token accuracy the preferred
answers'.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from app.config import EngineSpin

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 143
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier", "lora_rank")
RESULT_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")
METRIC_KEYS = (
    "step",
    "total_steps",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "valid_mean_token_accuracy",
)

SUPERVISED, DPO = "supervised", "dpo"
DPO_HYPERPARAMETERS = ("beta", "sft_weight")
DPO_METRIC_KEYS = ("reward_chosen", "reward_rejected", "reward_margin", "reward_accuracy")

# Error codes a child may report.
ERROR_INVALID_FILE = "invalid_training_file"
ERROR_INVALID_SPEC = "invalid_spec"
ERROR_MODEL_NOT_FOUND = "model_not_found"
ERROR_OUT_OF_MEMORY = "out_of_memory"
ERROR_INTERNAL = "internal_error"
ERROR_PROCESS_LOST = "training_process_lost"  # another rank of a data-parallel job stopped (distributed.py)

Emit = Callable[[dict], None]


@dataclass
class TrainSpec:
    """What to train; serialised as SPEC.json."""

    job_id: str
    base_model: str
    fine_tuned_model: str
    train_file: str
    output_dir: str
    data_dir: str
    validation_file: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=lambda: dict.fromkeys(HYPERPARAMETERS, "auto"))
    seed: int | None = None
    resume_from: dict | None = None
    local_models: dict[str, str] = field(default_factory=dict)
    device: str = "auto"
    engine_spin: EngineSpin = "auto"
    method: str = SUPERVISED

    def to_json(self) -> str:
        """The spec as SPEC.json text."""
        return json.dumps(asdict(self), indent=2)

    def write(self, path: Path) -> Path:
        """Write SPEC.json and return its path."""
        Path(path).write_text(self.to_json())
        return Path(path)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSpec:
        """A spec from parsed JSON; unknown keys are ignored, missing required ones raise ValueError."""
        names = set(cls.__dataclass_fields__)
        required = ("job_id", "base_model", "fine_tuned_model", "train_file", "output_dir", "data_dir")
        missing = [k for k in required if not data.get(k)]
        if missing:
            raise ValueError(f"SPEC is missing {', '.join(missing)}.")
        values = {k: v for k, v in data.items() if k in names}
        if values.get("method", SUPERVISED) not in (SUPERVISED, DPO):
            raise ValueError(f"SPEC method must be {SUPERVISED!r} or {DPO!r}, not {values['method']!r}.")
        hyper = dict.fromkeys(HYPERPARAMETERS, "auto")
        hyper.update({k: v for k, v in (data.get("hyperparameters") or {}).items() if v is not None})
        values["hyperparameters"] = hyper
        values["local_models"] = {k: str(v) for k, v in (data.get("local_models") or {}).items()}
        return cls(**values)

    @classmethod
    def read(cls, path: Path) -> TrainSpec:
        """Load SPEC.json."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def event(message: str, *, level: str = "info", type: str = "message", data: dict | None = None) -> dict:
    """An event line."""
    return {"kind": "event", "level": level, "type": type, "message": message, "data": data}


def metrics_event(data: dict) -> dict:
    """A metrics event line (message mirrors OpenAI's: the step)."""
    return event(f"Step {data['step']}/{data['total_steps']}", type="metrics", data=data)


def hyperparameters_line(values: dict, total_steps: int) -> dict:
    """The resolved hyperparameters and the number of optimizer steps."""
    return {"kind": "hyperparameters", "values": values, "total_steps": total_steps}


def checkpoint_line(step: int, path: Path, metrics: dict) -> dict:
    """A checkpoint that is complete on disk."""
    return {"kind": "checkpoint", "step": step, "path": str(path), "metrics": metrics}


def result_line(adapter_path: Path, trained_tokens: int, result_file: Path) -> dict:
    """The final adapter."""
    return {
        "kind": "result",
        "adapter_path": str(adapter_path),
        "trained_tokens": trained_tokens,
        "result_file": str(result_file),
    }


def error_line(code: str, message: str) -> dict:
    """A failure, in plain words."""
    return {"kind": "error", "code": code, "message": message}


def stdout_emitter(stream: TextIO | None = None) -> Emit:
    """An emit() that writes one JSON line per object and flushes, so the parent sees it at once."""
    out = stream or sys.stdout

    def emit(obj: dict) -> None:
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        out.flush()

    return emit


def parse_line(line: str | bytes) -> dict | None:
    """One stdout line as a protocol object, or None for anything that is not one (diagnostics)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "kind" in obj else None
