"""Batched generation for evals on SmolLM2: items per minute through generate_batch against the same items one by one
through stream_chat (the single-chat path), in the same run.

Run: .venv/bin/python bench/eval_generation.py [--items 200] [--one-by-one 40] [--tokens 64] [--batch-size 16 ...]
Target (issue #16): batched >= 3x the one-by-one items/minute, and no regression of single-chat tokens/s (the
one-by-one decode rate printed here is the chat path's: compare with chat_latency.py's figure in bench/README.md).
Items: the user turns of app/sample_data/pirate_voice.jsonl and tests/fixtures/*.jsonl, cycled to --items, each a
one-message conversation; greedy, max_tokens --tokens. End-of-turn is ignored (unless --keep-eos) so every reply is
--tokens long on both sides. One by one is timed on the first --one-by-one items (the full set would take long on
2 cores), half before and half after the batched runs; batched runs all --items; both sides' replies are compared on
the common items.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def user_turns() -> list[str]:
    """Every user message of the sample and fixture datasets, in file order."""
    files = [ROOT / "app/sample_data/pirate_voice.jsonl", *sorted((ROOT / "tests/fixtures").glob("*.jsonl"))]
    turns = []
    for path in files:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            for message in json.loads(line).get("messages", []):
                content = message.get("content")
                if message.get("role") == "user" and isinstance(content, str) and content.strip():
                    turns.append(content)
    return turns


def load() -> str:
    """The machine's load: other helpers and benches share these 2 cores."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min {five:.2f})"


def main() -> None:
    """Measure one by one (half before, half after), batched (each batch size asked), print a line per batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--one-by-one", type=int, default=40, help="items timed one by one (the first ones)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16])
    parser.add_argument("--keep-eos", action="store_true", help="let replies end at end-of-turn")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "tuneboard-bench"))
    args = parser.parse_args()
    from app.config import Settings
    from app.engine import _hf
    from app.engine.catalog import SMOLLM2
    from app.engine.chat_types import ChatParams, ModelRef
    from app.engine.inference import ChatEngine

    settings = Settings(data_dir=Path(args.data_dir))
    chat_engine = ChatEngine(settings)
    _hf.prepare(settings.engine_spin)
    import torch

    ref = ModelRef(SMOLLM2, SMOLLM2)
    loaded = chat_engine.get_model(ref)
    if not args.keep_eos:
        loaded.eos_ids = frozenset()  # bench only: both sides decode exactly --tokens per reply
    turns = user_turns()
    conversations = [[{"role": "user", "content": turns[i % len(turns)]}] for i in range(args.items)]
    params = ChatParams(temperature=0, max_tokens=args.tokens)
    print(
        f"{SMOLLM2}, {len(conversations)} items ({len(set(turns))} distinct user turns), {args.tokens} tokens, "
        f"greedy, threads={torch.get_num_threads()}, engine_spin={settings.engine_spin}, "
        f"decoder={'CPU decoder' if loaded.decoder is not None else 'HF'}, "
        f"kernels={'C' if loaded.decoder is not None and loaded.decoder.kernels is not None else 'torch'}, {load()}"
    )
    list(chat_engine.stream_chat(ref, conversations[0], ChatParams(temperature=0, max_tokens=8)))  # warm up

    subset = conversations[: args.one_by_one]
    half = len(subset) // 2
    # One by one in two halves, before and after the batched runs: the machine's load drifts (other work shares
    # these cores), and both sides should see the same drift.
    first = run_one_by_one(chat_engine, ref, subset[:half], params)
    batched = []
    finished_at: list[float] = []  # when on_done heard of each reply
    for batch_size in args.batch_size:
        finished_at.clear()
        started, cpu = time.perf_counter(), time.process_time()
        completions = chat_engine.generate_batch(
            ref,
            conversations,
            params,
            batch_size=batch_size,
            on_done=lambda i, c: finished_at.append(time.perf_counter()),
        )
        batch_s, batch_cpu = time.perf_counter() - started, time.process_time() - cpu
        tokens = sum(c.completion_tokens for c in completions)
        errors = sum(c.error is not None for c in completions)
        batched.append((batch_size, completions, batch_s, batch_cpu))
        print(
            f"batched (generate_batch, batch {batch_size}): {len(conversations)} items in {batch_s:.1f} s = "
            f"{len(conversations) / batch_s * 60:.1f} items/min, {tokens / batch_s:.1f} tokens/s, "
            f"{batch_cpu / len(conversations) * 1000:.0f} CPU-ms per item, {errors} errors, on_done "
            f"{len(finished_at)} times; {load()}, other processes {chat_engine.cores.others_busy():.2f} cores"
        )
    second = run_one_by_one(chat_engine, ref, subset[half:], params)
    texts = first.texts + second.texts
    single_s = first.seconds + second.seconds
    single_cpu = (first.cpu_seconds + second.cpu_seconds) / len(subset)
    single_rate = len(subset) / single_s * 60
    rates = first.rates + second.rates
    print(
        f"one by one, both halves: {len(subset)} items in {single_s:.1f} s = {single_rate:.1f} items/min, "
        f"{single_cpu * 1000:.0f} CPU-ms per item, decode median {statistics.median(rates):.1f} tokens/s "
        "(the single-chat rate: compare chat_latency.py's)"
    )
    # CPU time per item is the steadier measure on a shared machine: wall time also counts other processes' turns.
    for batch_size, completions, batch_s, batch_cpu in batched:
        same = sum(c.text == text for c, text in zip(completions, texts, strict=False))
        batch_rate = len(conversations) / batch_s * 60
        cpu_ratio = single_cpu / (batch_cpu / len(conversations))
        print(
            f"batch_size={batch_size} items_per_min={batch_rate:.1f} one_by_one_items_per_min={single_rate:.1f} "
            f"ratio={batch_rate / single_rate:.2f} cpu_ratio={cpu_ratio:.2f} replies_equal={same}/{len(subset)}"
        )


@dataclass
class OneByOne:
    """The replies and timings of conversations run one by one through stream_chat."""

    texts: list[str]
    seconds: float
    cpu_seconds: float  # this process's CPU time (every thread)
    rates: list[float]  # decode tokens/s of each reply, past its first token


def run_one_by_one(chat_engine, ref, conversations: list[list[dict]], params) -> OneByOne:
    """Each conversation through stream_chat in turn, as a chat would run it; prints a line."""
    texts, rates = [], []
    tokens = 0
    started, cpu = time.perf_counter(), time.process_time()
    for messages in conversations:
        t0 = time.perf_counter()
        first = None
        text = []
        for chunk in chat_engine.stream_chat(ref, messages, params):
            if first is None and chunk.text:
                first = time.perf_counter() - t0
            text.append(chunk.text)
            last = chunk
        total = time.perf_counter() - t0
        n = last.usage["completion_tokens"]
        tokens += n
        if n > 1 and first is not None:
            rates.append((n - 1) / (total - first))
        texts.append("".join(text))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"one by one (stream_chat): {len(conversations)} items in {seconds:.1f} s = "
        f"{len(conversations) / seconds * 60:.1f} items/min, {tokens / seconds:.1f} tokens/s overall, "
        f"{cpu_seconds / len(conversations) * 1000:.0f} CPU-ms per item, decode median "
        f"{statistics.median(rates):.1f} tokens/s (min {min(rates):.1f}, max {max(rates):.1f}); {load()}, "
        f"other processes {chat_engine.cores.others_busy():.2f} cores"
    )
    return OneByOne(texts, seconds, cpu_seconds, rates)


if __name__ == "__main__":
    main()
