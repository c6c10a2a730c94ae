"""Chat latency of the local engine on SmolLM2: time to first token and decode tokens/s (model already loaded).

Run: .venv/bin/python bench/chat_latency.py [--tokens 128] [--data-dir /tmp/tuneboard-bench]
Targets (issue #4): time to first token < 300 ms, >= 80 tokens/s on the 2-core CPU.
Baseline in the same run: `model.generate` of transformers (greedy, KV cache, float32 weights) on the same prompts,
and the served weights' agreement with that float32 reference (teacher-forced top-1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = [
    "Write a short story about a dragon who learns to cook.",
    "Explain how a bicycle works to a ten year old.",
    "List some tips for staying focused while studying.",
]


def main() -> None:
    """Measure, print one line per prompt and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "tuneboard-bench"))
    args = parser.parse_args()
    from app.config import Settings
    from app.engine import _hf
    from app.engine.catalog import SMOLLM2
    from app.engine.chat_types import ChatParams, ModelRef
    from app.engine.inference import ChatEngine
    from app.engine.tokenizer import render_chat

    settings = Settings(data_dir=Path(args.data_dir))
    chat_engine = ChatEngine(settings)
    _hf.prepare(settings.engine_spin)  # offline and quiet before torch loads (ChatEngine set the OpenMP policy)
    import torch

    ref = ModelRef(SMOLLM2, SMOLLM2)
    started = time.perf_counter()
    loaded = chat_engine.get_model(ref)
    print(f"load: {time.perf_counter() - started:.2f} s (threads={torch.get_num_threads()})")
    # Ignore EOS so every run decodes the same number of tokens.
    params = ChatParams(temperature=0, max_tokens=args.tokens)
    # Decode rate is measured past the first token; short replies (EOS) still count their own rate.
    list(chat_engine.stream_chat(ref, [{"role": "user", "content": "Hi"}], ChatParams(temperature=0, max_tokens=8)))
    ttfts, rates = [], []
    for prompt in PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        t0 = time.perf_counter()
        first = None
        for chunk in chat_engine.stream_chat(ref, messages, params):
            if first is None and chunk.text:
                first = time.perf_counter() - t0
            last = chunk
        total = time.perf_counter() - t0
        n = last.usage["completion_tokens"]
        rate = (n - 1) / (total - first) if n > 1 else 0.0
        ttfts.append(first)
        rates.append(rate)
        # Decoding uses both cores only while other processes leave them free: say what it saw.
        print(
            f"engine: ttft={first * 1000:.0f} ms, {n} tokens, decode {rate:.1f} tokens/s "
            f"(load {os.getloadavg()[0]:.2f}, other processes {chat_engine.cores.others_busy():.2f} cores)"
        )
    from transformers import AutoModelForCausalLM

    from app.engine.catalog import resolve_base_model

    tok = loaded.tokenizer
    model = AutoModelForCausalLM.from_pretrained(resolve_base_model(settings, SMOLLM2), dtype=torch.float32).eval()
    base_rates = []
    for prompt in PROMPTS:
        ids = tok(
            render_chat(tok, [{"role": "user", "content": prompt}], add_generation_prompt=True),
            return_tensors="pt",
            add_special_tokens=False,
        )
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=args.tokens, do_sample=False)
        n = out.shape[1] - ids["input_ids"].shape[1]
        base_rates.append(n / (time.perf_counter() - t0))
    print(f"baseline generate(): {statistics.median(base_rates):.1f} tokens/s")
    if loaded.decoder is not None:
        # Quality of the served (quantized) weights: teacher-forced top-1 agreement with the float32 HF forward.
        agree = total = 0
        with torch.inference_mode():
            for prompt in PROMPTS:
                ids = tok(
                    render_chat(tok, [{"role": "user", "content": prompt}], add_generation_prompt=True),
                    add_special_tokens=False,
                )["input_ids"]
                full = model.generate(torch.tensor([ids]), max_new_tokens=args.tokens, do_sample=False)[0].tolist()
                reference = model(torch.tensor([full])).logits[0, len(ids) - 1 : -1].argmax(-1).tolist()
                cache = loaded.decoder.new_cache(len(full))
                logits = loaded.decoder.forward(ids, cache)
                for position, token in enumerate(full[len(ids) :]):
                    agree += int(torch.argmax(logits)) == reference[position]
                    total += 1
                    logits = loaded.decoder.forward([token], cache)
        print(f"served weights pick the float32 greedy token at {agree}/{total} positions (teacher-forced)")
    print(
        f"ttft_ms={statistics.median(ttfts) * 1000:.0f} tokens_per_s={statistics.median(rates):.1f} "
        f"ratio_vs_generate={statistics.median(rates) / statistics.median(base_rates):.2f}"
    )


if __name__ == "__main__":
    main()
