"""A stand-in for `python -m app.engine.train_main SPEC.json` that speaks the same JSON-lines protocol.

Steps take TB_FAKE_STEP_SECONDS each (default 0.02); a checkpoint at each epoch end (4 steps an epoch);
resumes from spec["resume_from"]; SIGTERM stops it after the current step with exit 143; a training file whose
first line contains "TRAINER_FAIL" makes it report an error and exit 1.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

STEPS_PER_EPOCH = 4


def emit(**item) -> None:
    print(json.dumps(item), flush=True)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    step_seconds = float(os.environ.get("TB_FAKE_STEP_SECONDS", "0.02"))
    hyper = spec["hyperparameters"]
    epochs = 2 if hyper.get("n_epochs", "auto") == "auto" else int(hyper["n_epochs"])
    total = epochs * STEPS_PER_EPOCH
    out = Path(spec["output_dir"])
    train = Path(spec["train_file"]).read_text()
    if "TRAINER_FAIL" in train.splitlines()[0]:
        emit(kind="error", code="invalid_training_data", message="The fake trainer was told to fail.")
        return 1
    start = (spec.get("resume_from") or {}).get("step", 0)
    emit(
        kind="hyperparameters",
        values={"n_epochs": epochs, "batch_size": 1, "learning_rate_multiplier": 1.0, "lora_rank": 8},
        total_steps=total,
    )
    emit(
        kind="event",
        level="info",
        type="message",
        message=f"Resumed at step {start}" if start else "Fine-tuning job started",
        data={"pid": os.getpid()},
    )
    for step in range(start + 1, total + 1):
        if stop.wait(step_seconds):
            return 143
        with open(out / "steps.log", "a") as log:
            log.write(f"{os.getpid()} {step}\n")
        emit(
            kind="event",
            level="info",
            type="metrics",
            message=f"Step {step}/{total}: training loss=1.0",
            data={"step": step, "total_steps": total, "train_loss": 1.0 / step},
        )
        if step % STEPS_PER_EPOCH == 0:
            ckpt = out / "checkpoints" / f"step-{step}"
            ckpt.mkdir(parents=True, exist_ok=True)
            (ckpt / "adapter_config.json").write_text("{}")
            emit(kind="checkpoint", step=step, path=str(ckpt), metrics={"step": step, "train_loss": 1.0 / step})
    adapter = out / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_config.json").write_text("{}")
    (out / "result.csv").write_text("step,train_loss\n")
    emit(kind="event", level="info", type="message", message="New fine-tuned model created", data=None)
    emit(kind="result", adapter_path=str(adapter), trained_tokens=total * 100, result_file=str(out / "result.csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
