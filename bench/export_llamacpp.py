"""Exported GGUF in llama.cpp beside Tuneboard's chat: the same prompts, greedy, the same threads; answers and tokens/s.

Run: .venv/bin/python bench/export_llamacpp.py --llama-python /tmp/llamacpp-venv/bin/python [--adapter DIR]
     [--quant f16|q8_0] [--tokens 128] [--data-dir /tmp/tuneboard-bench] [--gguf OTHER.gguf]

It exports SmolLM2 (with --adapter, that adapter merged) to a GGUF as the export endpoint does, decodes each prompt
with Tuneboard's ChatEngine (as served: the engine_quantize setting in force; and float32, for the answers), then
runs itself under --llama-python, a Python that has llama-cpp-python, to decode the same prompts from the GGUF.
llama-cpp-python is never a Tuneboard dependency (tests never need it); build it in a venv of its own:

    python3 -m venv /tmp/llamacpp-venv
    CMAKE_ARGS=-DGGML_NATIVE=ON /tmp/llamacpp-venv/bin/pip install llama-cpp-python   # 10-15 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = [
    "Write a short story about a dragon who learns to cook.",
    "Explain how a bicycle works to a ten year old.",
    "List some tips for staying focused while studying.",
    "What is the capital of France?",
    "Give me three ideas for a rainy afternoon.",
]
INSTALL = (
    "llama-cpp-python is not importable by {python}. Build it in a venv of its own:\n"
    "    python3 -m venv /tmp/llamacpp-venv\n"
    "    CMAKE_ARGS=-DGGML_NATIVE=ON /tmp/llamacpp-venv/bin/pip install llama-cpp-python\n"
    "then pass --llama-python /tmp/llamacpp-venv/bin/python."
)


def llamacpp_worker(gguf_path: str, threads: int, tokens: int) -> None:
    """(In the llama-cpp-python venv) decode each prompt greedily from the GGUF; one JSON line per prompt."""
    try:
        from llama_cpp import Llama
    except ImportError:
        print(json.dumps({"error": INSTALL.format(python=sys.executable)}))
        return
    llm = Llama(model_path=gguf_path, n_threads=threads, n_threads_batch=threads, n_ctx=2048, verbose=False)
    llm.create_chat_completion([{"role": "user", "content": "Hi"}], temperature=0, max_tokens=8)  # warm up
    for prompt in PROMPTS:
        started = time.perf_counter()
        first, pieces = None, []
        stream = llm.create_chat_completion(
            [{"role": "user", "content": prompt}], temperature=0, top_k=1, max_tokens=tokens, stream=True
        )
        for chunk in stream:
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                first = first if first is not None else time.perf_counter() - started
                pieces.append(text)
        total = time.perf_counter() - started
        # A stream chunk can hold more than one token (a character split over tokens): count the reply's tokens.
        n = len(llm.tokenize("".join(pieces).encode(), add_bos=False, special=True))
        rate = (n - 1) / (total - first) if first is not None and n > 1 else 0.0
        print(json.dumps({"answer": "".join(pieces), "tokens": n, "ttft": first, "rate": rate}), flush=True)


def tuneboard_chat(chat_engine, ref, tokens: int) -> list[dict]:
    """Tuneboard's greedy answer and decode rate for each prompt (rate past the first token, as chat_latency.py)."""
    from app.engine.chat_types import ChatParams

    params = ChatParams(temperature=0, max_tokens=tokens)
    list(chat_engine.stream_chat(ref, [{"role": "user", "content": "Hi"}], ChatParams(temperature=0, max_tokens=8)))
    out = []
    for prompt in PROMPTS:
        started = time.perf_counter()
        first, pieces = None, []
        for chunk in chat_engine.stream_chat(ref, [{"role": "user", "content": prompt}], params):
            if chunk.text:
                first = first if first is not None else time.perf_counter() - started
                pieces.append(chunk.text)
            last = chunk
        total = time.perf_counter() - started
        n = last.usage["completion_tokens"]
        rate = (n - 1) / (total - first) if first is not None and n > 1 else 0.0
        out.append({"answer": "".join(pieces), "tokens": n, "ttft": first, "rate": rate})
    return out


def main() -> None:
    """Export, measure both engines, print one line per prompt and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-python", default=sys.executable, help="a Python with llama-cpp-python installed")
    parser.add_argument("--adapter", type=Path, help="a tuned adapter to merge (default: the base SmolLM2)")
    parser.add_argument("--quant", default="f16", choices=["f16", "q8_0"])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--gguf", type=Path, help="give llama.cpp this GGUF instead (e.g. the shipped SmolLM2 Q4_1)")
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "tuneboard-bench"))
    parser.add_argument("--llamacpp-worker", nargs=3, metavar=("GGUF", "THREADS", "TOKENS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.llamacpp_worker:
        gguf_path, threads, tokens = args.llamacpp_worker
        llamacpp_worker(gguf_path, int(threads), int(tokens))
        return

    from app.config import Settings
    from app.engine import _hf
    from app.engine.catalog import SMOLLM2, resolve_base_model
    from app.engine.chat_types import ModelRef
    from app.engine.export import export_gguf, export_merged
    from app.engine.inference import ChatEngine

    settings = Settings(data_dir=Path(args.data_dir))
    served_engine = ChatEngine(settings)
    _hf.prepare(settings.engine_spin)
    import torch

    threads = torch.get_num_threads()
    folder = settings.data_dir / "bench-export" / (args.adapter.name if args.adapter else "base")
    started = time.perf_counter()
    merged = folder / "merged"
    if not merged.exists():
        export_merged(resolve_base_model(settings, SMOLLM2), args.adapter, merged)
    gguf_file = folder / f"smollm2-{args.quant}.gguf"
    if not gguf_file.exists():
        export_gguf(merged, gguf_file, args.quant)
    print(f"export: {time.perf_counter() - started:.1f} s, {gguf_file} ({gguf_file.stat().st_size / 1e6:.0f} MB)")
    if args.gguf is not None:
        gguf_file = args.gguf
        print(f"llama.cpp reads {gguf_file} ({gguf_file.stat().st_size / 1e6:.0f} MB) instead")

    ref = ModelRef(SMOLLM2 if args.adapter is None else "tuned", SMOLLM2, adapter_path=args.adapter)
    served = tuneboard_chat(served_engine, ref, args.tokens)
    served_engine.close()
    with ChatEngine(settings.model_copy(update={"engine_quantize": False})) as exact_engine:
        exact = tuneboard_chat(exact_engine, ref, args.tokens)

    print(f"threads={threads} load={os.getloadavg()[0]:.2f} tokens={args.tokens} quant={args.quant}")
    for prompt, ours, fp32 in zip(PROMPTS, served, exact, strict=True):
        print(
            f"{prompt[:40]!r}: tuneboard {ours['rate']:.1f} tok/s ({ours['tokens']} tokens, ttft "
            f"{ours['ttft'] * 1000:.0f} ms); float32 {fp32['rate']:.1f} tok/s, same answer as served: "
            f"{ours['answer'] == fp32['answer']}"
        )
    ours_rate = statistics.median(r["rate"] for r in served)
    print(f"tuneboard_tokens_per_s={ours_rate:.1f}")
    command = [args.llama_python, __file__, "--llamacpp-worker", str(gguf_file), str(threads), str(args.tokens)]
    lines = subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()
    llama = [json.loads(line) for line in lines if line.startswith("{")]
    if llama and "error" in llama[0]:
        print(llama[0]["error"])
        return
    for prompt, fp32, theirs in zip(PROMPTS, exact, llama, strict=True):
        same = theirs["answer"] == fp32["answer"]
        print(
            f"{prompt[:40]!r}: llama.cpp {theirs['rate']:.1f} tok/s ({theirs['tokens']} tokens, ttft "
            f"{theirs['ttft'] * 1000:.0f} ms); same answer as Tuneboard float32: {same}"
        )
        if not same:
            print(f"    llama.cpp: {theirs['answer'][:160]!r}\n    tuneboard: {fp32['answer'][:160]!r}")
    theirs_rate = statistics.median(r["rate"] for r in llama)
    same = sum(t["answer"] == f["answer"] for t, f in zip(llama, exact, strict=True))
    print(
        f"tuneboard_tokens_per_s={ours_rate:.1f} llamacpp_tokens_per_s={theirs_rate:.1f} "
        f"ratio={ours_rate / theirs_rate:.2f} same_answers_as_float32={same}/{len(PROMPTS)}"
    )


if __name__ == "__main__":
    main()
