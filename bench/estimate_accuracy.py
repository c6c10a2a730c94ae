"""Estimate vs actual for real SmolLM2 jobs (issue #17): tokens and time, on this machine.

Run: .venv/bin/python bench/estimate_accuracy.py [--data-dir /tmp/tb-estimate] [--runs small,long,auto]
Each run counts the training file's tokens and estimates the job's time as the job form does (the model table's
pace for this device, no calibration), then trains it with `python -m app.engine.train_main` and times the whole
process (start, model load, steps, evaluations, checkpoints). It prints one JSON line per run, then a line with
the pace a least-squares fit of the runs gives (fixed seconds, seconds per step, tokens per second), which is
what app/data/models.toml holds. Slow: minutes per run on 2 cores; the first run converts SmolLM2 (about 20 s).
Targets (issue #17): tokens within 15 %, time within 30 %.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.config import Settings
from app.datasets.validation.estimate import FORWARD_SHARE, estimate, table_pace
from app.datasets.validation.modeltable import resolve_model
from app.datasets.validation.tokens import count_many
from app.engine import protocol as p
from app.engine.catalog import SMOLLM2

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"  # ../shared beside the repository
RUNS = {
    # name: (dataset file, examples, hyperparameters)
    "small": ("pirate_training_set.jsonl", 10, {"n_epochs": 2, "batch_size": 2}),
    "long": ("toy_chat_fine_tuning.jsonl", 5, {"n_epochs": 1, "batch_size": 1}),
    "auto": ("pirate_training_set.jsonl", 10, {"n_epochs": "auto", "batch_size": "auto"}),
    # Held out: not among the runs the figures in models.toml were fitted to.
    "held-long": ("toy_chat_fine_tuning.jsonl", 5, {"n_epochs": 3, "batch_size": 2}),
    "held-pirate": ("pirate_training_set.jsonl", 10, {"n_epochs": 4, "batch_size": 3}),
}


def _records(name: str, n: int) -> list[dict]:
    path = SHARED / name
    if not path.exists():
        path = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / name
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records[:n]


def run_one(name: str, data_dir: Path, settings: Settings) -> dict:
    """Estimate, train and time one job; the result as a dict."""
    file_name, n, hyper = RUNS[name]
    records = _records(file_name, n)
    work = Path(tempfile.mkdtemp(prefix=f"est-{name}-", dir=data_dir))
    train = work / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in records))
    valid = work / "valid.jsonl"
    valid.write_text("".join(json.dumps(r) + "\n" for r in records[:3]))
    info = resolve_model(SMOLLM2, settings)
    counts = count_many(records, info, settings)
    pace = table_pace(info, "cpu")
    est = estimate(
        info,
        [c.total for c in counts],
        hyperparameters=hyper,
        pace=pace,
        validation_tokens=sum(c.total for c in counts[:3]),
        n_validation=3,
    )
    spec = p.TrainSpec(
        job_id=f"bench-{name}",
        base_model=SMOLLM2,
        fine_tuned_model=f"ft:{SMOLLM2}:bench",
        train_file=str(train),
        validation_file=str(valid),
        output_dir=str(work / "out"),
        data_dir=str(data_dir),
        hyperparameters=hyper,
        seed=1,
        device="cpu",
    )
    spec_path = spec.write(work / "SPEC.json")
    started = time.monotonic()
    load_end = None
    trained = None
    steps = None
    with subprocess.Popen(
        [sys.executable, "-m", "app.engine.train_main", str(spec_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            item = json.loads(line) if line.startswith("{") else {}
            if item.get("message") == "Fine-tuning job started":
                load_end = time.monotonic()
            if item.get("kind") == "hyperparameters":
                steps = item.get("total_steps")
            if item.get("kind") == "result":
                trained = item.get("trained_tokens")
        code = proc.wait()
    seconds = time.monotonic() - started
    return {
        "run": name,
        "exit": code,
        "steps": steps,
        "estimated_steps": est.n_steps,
        "trained_tokens": trained,
        "estimated_tokens": est.charged_tokens,
        "estimated_eval_tokens": est.eval_tokens,
        "token_error": None if not trained else round(est.charged_tokens / trained - 1, 3),
        "seconds": round(seconds, 1),
        "load_seconds": round(load_end - started, 1) if load_end else None,
        "estimated_seconds": est.training_seconds,
        "time_error": None if not est.training_seconds else round(est.training_seconds / seconds - 1, 3),
        "load_average": os.getloadavg()[0],
    }


def fit(results: list[dict]) -> dict | None:
    """Fixed seconds, seconds per step and tokens per second that fit the runs (least squares), in the estimate's
    own terms: evaluated tokens cost FORWARD_SHARE times less than trained ones."""
    rows = [r for r in results if r["steps"] and r["trained_tokens"]]
    if len(rows) < 3:
        return None
    import numpy as np

    a = np.array([[1.0, r["steps"], r["trained_tokens"] + r["estimated_eval_tokens"] / FORWARD_SHARE] for r in rows])
    b = np.array([r["seconds"] for r in rows])
    (fixed, per_step, per_token), *_ = np.linalg.lstsq(a, b, rcond=None)
    return {
        "fixed_seconds": round(float(fixed), 1),
        "seconds_per_step": round(float(per_step), 2),
        "tokens_per_second": round(1 / float(per_token)) if per_token > 0 else None,
    }


def main() -> None:
    """Run the chosen jobs and print their estimate vs actual."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "tb-estimate")
    parser.add_argument("--runs", default="small,long,auto")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=args.data_dir)
    results = []
    for name in args.runs.split(","):
        result = run_one(name, args.data_dir, settings)
        results.append(result)
        print(json.dumps(result), flush=True)
    print(json.dumps({"fit": fit(results)}), flush=True)


if __name__ == "__main__":
    main()
