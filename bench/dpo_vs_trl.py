"""DPO throughput: the engine's DPO loop vs TRL's DPOTrainer + PEFT LoRA, same model, data and settings, one run.

Run (TRL lives in the bench's own environment, not in the app's):
    PYTHONPATH=/work/bench-venvs/trl-site:$PWD .venv/bin/python bench/dpo_vs_trl.py [--pairs 48] [--batch-size 4]
Counts the real tokens of both chats of every pair (prompt + preferred answer, prompt + other answer) per second
of training, the reference model's scoring included on both sides (the engine scores every pair once before its
first step; TRL scores each batch with the adapter disabled as it goes). TRL runs in a fresh interpreter with the
environment this script started with (its own OpenMP defaults) and at its own defaults otherwise. The last line
is `ratio_vs_trl=<engine/TRL>`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import train_throughput
from bench.train_throughput import WORDS

LR = 1e-4
RANK = 16
BETA = 0.1


def make_pairs(n: int, seed: int = 3) -> list[dict]:
    """Preference pairs of varied length in OpenAI's DPO shape."""
    rng = random.Random(seed)

    def words(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    return [
        {
            "input": {"messages": [{"role": "user", "content": words(5, 40)}]},
            "preferred_output": [{"role": "assistant", "content": words(10, 120)}],
            "non_preferred_output": [{"role": "assistant", "content": words(10, 120)}],
        }
        for _ in range(n)
    ]


def bench_engine(settings, base: str, pairs, work: Path, batch_size: int, device: str) -> tuple[float, int, float]:
    """(tokens/s, tokens, seconds) of one DPO epoch through the engine, from the reference pass to the last step."""
    return train_throughput.bench_engine(
        settings,
        base,
        pairs,
        work,
        batch_size,
        device,
        started="Scoring the answers with the base model",
        method="dpo",
        lr=LR,
        beta=BETA,
    )


def pair_tokens(base_path: Path, pairs) -> int:
    """Tokens of both chats of every pair with the model's own template (what the engine reports)."""
    from app.engine.dpo_data import encode_pairs
    from app.engine.tokenizer import load_tokenizer

    return encode_pairs(load_tokenizer(base_path), pairs).total_tokens


def bench_trl(
    base_path: Path, pairs, work: Path, batch_size: int, checkpointing: bool | None = None
) -> tuple[float, int, float]:
    """(tokens/s, tokens, seconds) of one epoch of TRL's DPOTrainer with a PEFT LoRA adapter at its defaults
    (`checkpointing`: set gradient checkpointing on or off instead of TRL's default)."""
    import pyarrow as pa
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from datasets import Dataset

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    rows = [
        {
            "prompt": p["input"]["messages"],
            "chosen": p["preferred_output"],
            "rejected": p["non_preferred_output"],
        }
        for p in pairs
    ]
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    torch.manual_seed(1)
    args = DPOConfig(
        output_dir=str(work / "trl-out"),
        per_device_train_batch_size=batch_size,
        learning_rate=LR,
        num_train_epochs=1,
        beta=BETA,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        bf16=False,
        seed=1,
        **({} if checkpointing is None else {"gradient_checkpointing": checkpointing}),
    )
    peft = LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = DPOTrainer(
        model=model,
        args=args,
        # An explicit fingerprint: datasets' own hashes the arrow table with dill, which fails on this pyarrow.
        train_dataset=Dataset(pa.Table.from_pylist(rows), fingerprint="dpo-bench"),
        processing_class=tokenizer,
        peft_config=peft,
    )
    output = trainer.train()
    seconds = output.metrics["train_runtime"]
    n_tokens = pair_tokens(base_path, pairs)
    return n_tokens / seconds, n_tokens, seconds


def trl_in_own_process(args, base_path: Path, batch_size: int, clean_env: dict) -> tuple[float, int, float]:
    """bench_trl in a fresh interpreter with the environment this script started with."""
    env = {**clean_env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, __file__, "--trl-only", str(base_path), "--pairs", str(args.pairs)]
    command += ["--batch-size", str(batch_size), "--trl-checkpointing", args.trl_checkpointing]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"TRL failed:\n{done.stderr[-3000:]}")
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Run both, print tokens/s and the ratio."""
    clean_env = dict(os.environ)  # before _hf.prepare adds the engine's OpenMP settings
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "tuneboard-bench"))
    parser.add_argument("--base-dir", help="an HF model directory to use instead of SmolLM2 (same shape, e.g. random)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate engine and TRL runs; keep each one's best")
    parser.add_argument(
        "--trl-checkpointing",
        choices=("default", "on", "off"),
        default="default",
        help="TRL's gradient checkpointing: its default (on), or set (off is TRL at its fastest on a small model)",
    )
    parser.add_argument("--trl-only", metavar="MODEL_DIR", help=argparse.SUPPRESS)  # the baseline's own process
    args = parser.parse_args()
    if args.trl_only:
        with tempfile.TemporaryDirectory() as tmp:
            checkpointing = {"default": None, "on": True, "off": False}[args.trl_checkpointing]
            result = bench_trl(Path(args.trl_only), make_pairs(args.pairs), Path(tmp), args.batch_size, checkpointing)
        print(json.dumps(result))
        return
    try:
        import trl
    except ImportError as exc:
        raise SystemExit(f"TRL does not import here ({exc}); see the run line in this file's docstring.") from None
    from app.config import Settings
    from app.engine import _hf
    from app.engine.catalog import SMOLLM2, resolve_base_model

    base = "bench-base" if args.base_dir else SMOLLM2
    local = {base: Path(args.base_dir)} if args.base_dir else {}
    settings = Settings(data_dir=Path(args.data_dir), local_models=local)
    _hf.prepare(settings.engine_spin)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    base_path = resolve_base_model(settings, base, progress=print)
    pairs = make_pairs(args.pairs)
    print(
        f"device={device} threads={torch.get_num_threads()} pairs={args.pairs} batch_size={args.batch_size} "
        f"trl={trl.__version__} trl_checkpointing={args.trl_checkpointing} load={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    best_engine = best_trl = 0.0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            eng_tps, eng_tokens, eng_s = bench_engine(settings, base, pairs, Path(tmp), args.batch_size, device)
        print(
            f"engine: {eng_tokens} tokens in {eng_s:.1f} s = {eng_tps:.0f} tokens/s load={os.getloadavg()[0]:.2f}",
            flush=True,
        )
        trl_tps, trl_tokens, trl_s = trl_in_own_process(args, base_path, args.batch_size, clean_env)
        print(
            f"trl: {trl_tokens} tokens in {trl_s:.1f} s = {trl_tps:.0f} tokens/s load={os.getloadavg()[0]:.2f}",
            flush=True,
        )
        best_engine, best_trl = max(best_engine, eng_tps), max(best_trl, trl_tps)
    print(f"ratio_vs_trl={best_engine / best_trl:.2f}")


if __name__ == "__main__":
    main()
