"""Training throughput: the engine's LoRA loop vs Hugging Face Trainer + PEFT LoRA, same model/data/settings.

Run: .venv/bin/python bench/train_throughput.py [--examples 48] [--batch-size 4] [--data-dir /tmp/tb-bench]
Counts real (non-padding) tokens per second of training; the last line is `ratio_vs_trainer=<engine/trainer>`.
Target (issue #4): >= 2.0 on the 2-core CPU, >= 15 on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = [
    "the",
    "model",
    "answer",
    "question",
    "data",
    "train",
    "token",
    "example",
    "assistant",
    "user",
    "please",
    "explain",
    "how",
    "why",
    "when",
    "what",
    "which",
    "order",
    "refund",
    "shipping",
    "price",
    "weather",
    "city",
    "paris",
    "london",
    "tokyo",
    "account",
    "password",
    "reset",
    "invoice",
    "json",
    "error",
    "retry",
]
LR = 2e-4
RANK = 16


def make_records(n: int, seed: int = 3) -> list[dict]:
    """Chats of varied length (so padding matters, as in real data)."""
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40)))
        answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 160)))
        records.append({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]})
    return records


def bench_engine(
    settings,
    base: str,
    records,
    work: Path,
    batch_size: int,
    device: str,
    *,
    started: str = "Fine-tuning job started",
    method: str | None = None,
    lr: float = LR,
    **hyperparameters,
) -> tuple[float, int, float]:
    """(tokens/s, tokens, seconds) of one epoch through the engine's training loop, model loading excluded: timed
    from the first event that starts with `started` to the new model's. `method` ("dpo"), the learning rate and
    extra `hyperparameters` (beta) go into the job's spec."""
    from app.engine.train import run_training

    train = work / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in records))
    marks: dict[str, float] = {}
    tokens = {}

    def emit(obj):
        message = obj.get("message", "")
        if obj["kind"] == "event" and message.startswith(started):
            marks.setdefault("start", time.perf_counter())
        if obj["kind"] == "event" and message.startswith("New fine-tuned model"):
            marks["end"] = time.perf_counter()
        if obj["kind"] == "event" and obj["data"] and "tokens" in obj["data"]:
            tokens["n"] = obj["data"]["tokens"]
        if obj["kind"] == "error":
            raise SystemExit(f"engine failed: {obj['message']}")

    spec = {
        "job_id": "bench",
        "base_model": base,
        "fine_tuned_model": "ft:bench",
        "train_file": str(train),
        "validation_file": None,
        "output_dir": str(work / "engine-out"),
        "hyperparameters": {
            "n_epochs": 1,
            "batch_size": batch_size,
            "learning_rate_multiplier": lr / 1e-3,
            "lora_rank": RANK,
            **hyperparameters,
        },
        "seed": 1,
        "resume_from": None,
        "data_dir": str(settings.data_dir),
        "local_models": {k: str(v) for k, v in settings.local_models.items()},
        "device": device,
        **({"method": method} if method else {}),
    }
    assert run_training(spec, emit) == "succeeded"
    seconds = marks["end"] - marks["start"]
    return tokens["n"] / seconds, tokens["n"], seconds


def bench_trainer(base_path: Path, records, work: Path, batch_size: int, cuda: bool) -> tuple:
    """(tokens/s, tokens, seconds, peak CUDA bytes) of one epoch of HF Trainer + PEFT LoRA at its defaults."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from app.engine._hf import quiet
    from app.engine.tokenizer import encode_chat, load_tokenizer

    tokenizer = load_tokenizer(base_path)
    rows = []
    for record in records:
        enc = encode_chat(tokenizer, record["messages"])
        labels = [t if keep else -100 for t, keep in zip(enc.input_ids, enc.trained, strict=True)]
        rows.append({"input_ids": enc.input_ids, "attention_mask": [1] * len(enc.input_ids), "labels": labels})
    n_tokens = sum(len(r["input_ids"]) for r in rows)
    with quiet():
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
        torch.manual_seed(1)
        model = get_peft_model(
            model, LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules="all-linear", task_type="CAUSAL_LM")
        )
        args = TrainingArguments(
            output_dir=str(work / "trainer-out"),
            per_device_train_batch_size=batch_size,
            learning_rate=LR,
            num_train_epochs=1,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            bf16=cuda,
            seed=1,
        )
        collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)
        output = trainer.train()
    seconds = output.metrics["train_runtime"]
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    return n_tokens / seconds, n_tokens, seconds, peak


def trainer_in_own_process(args, base_path: Path, batch_size: int, clean_env: dict) -> tuple[float, int, float]:
    """bench_trainer in a fresh interpreter with the environment this script started with: the Trainer runs at its
    own defaults (libgomp's spinning included), not under the OpenMP settings _hf.prepare chose for the engine."""
    env = {**clean_env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # offline only: no tuning variables
    command = [
        sys.executable,
        __file__,
        "--trainer-only",
        str(base_path),
        "--examples",
        str(args.examples),
        "--batch-size",
        str(batch_size),
    ]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    """Run both, print tokens/s and the ratio."""
    clean_env = dict(os.environ)  # before _hf.prepare adds the engine's OpenMP settings
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "tuneboard-bench"))
    parser.add_argument("--base-dir", help="an HF model directory to use instead of SmolLM2 (same shape, e.g. random)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="alternate engine and Trainer runs this many times and keep each one's best (a shared "
        "machine's load hits one run or the other)",
    )
    parser.add_argument("--trainer-only", metavar="MODEL_DIR", help=argparse.SUPPRESS)  # the baseline's own process
    args = parser.parse_args()
    if args.trainer_only:
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            result = bench_trainer(
                Path(args.trainer_only),
                make_records(args.examples),
                Path(tmp),
                args.batch_size,
                torch.cuda.is_available(),
            )
        print(json.dumps(result))
        return
    from app.config import Settings
    from app.engine import _hf
    from app.engine.catalog import SMOLLM2, resolve_base_model

    base = "bench-base" if args.base_dir else SMOLLM2
    local = {base: Path(args.base_dir)} if args.base_dir else {}
    settings = Settings(data_dir=Path(args.data_dir), local_models=local)
    _hf.prepare(settings.engine_spin)  # TUNEBOARD_ENGINE_SPIN, as the engine's trainer would have it
    import torch

    cuda = torch.cuda.is_available()
    batch_size = args.batch_size or (16 if cuda else 4)
    base_path = resolve_base_model(settings, base, progress=print)
    records = make_records(args.examples)
    device = "cuda" if cuda else "cpu"
    openmp = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ)
    print(
        f"device={device} threads={torch.get_num_threads()} examples={args.examples} batch_size={batch_size} "
        f"engine OpenMP: {openmp or 'defaults'} load={os.getloadavg()[0]:.2f}"
    )
    best_engine = best_trainer = 0.0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            eng_tps, eng_tokens, eng_s = bench_engine(settings, base, records, Path(tmp), batch_size, device)
            peak = f" peak_mem={torch.cuda.max_memory_allocated() / 2**30:.2f}GiB" if cuda else ""
            print(
                f"engine: {eng_tokens} tokens in {eng_s:.1f} s = {eng_tps:.0f} tokens/s{peak} "
                f"load={os.getloadavg()[0]:.2f}",
                flush=True,
            )
        tr_tps, tr_tokens, tr_s, tr_peak = trainer_in_own_process(args, base_path, batch_size, clean_env)
        peak = f" peak_mem={tr_peak / 2**30:.2f}GiB" if cuda else ""
        print(
            f"trainer: {tr_tokens} tokens in {tr_s:.1f} s = {tr_tps:.0f} tokens/s{peak} load={os.getloadavg()[0]:.2f}",
            flush=True,
        )
        best_engine, best_trainer = max(best_engine, eng_tps), max(best_trainer, tr_tps)
    print(f"ratio_vs_trainer={best_engine / best_trainer:.2f}")


if __name__ == "__main__":
    main()
