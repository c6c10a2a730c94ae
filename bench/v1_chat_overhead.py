"""What /v1/chat/completions adds on top of the engine: time to first token and tokens/s, streamed via the SDK.

Run: .venv/bin/python bench/v1_chat_overhead.py [--model tiny|smollm] [--tokens 64] [--runs 5]
Target (issue #7): streaming through /v1 (real uvicorn, real openai SDK) adds < 50 ms to the time to first token
and keeps >= 90 % of the engine's own decode rate.
Baseline in the same run: the engine's own ChatEngine.stream_chat called directly on the same model and prompts.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPTS = ["Tell me a joke about cats.", "What is the capital of France?", "Explain the quick brown fox."]


def _measure(start) -> tuple[float, int, float]:
    # The clock starts before the request is made, so prefill and (for /v1) the HTTP round trip both count.
    t0 = time.perf_counter()
    first, n = None, 0
    for text in start():
        if text:
            n += 1
            first = first if first is not None else time.perf_counter() - t0
    total = time.perf_counter() - t0
    return first or total, n, (n - 1) / (total - first) if n > 1 and first else 0.0


def _wait_for_server(base_url: str, key: str, process):
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=key, max_retries=0)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.models.list()
            return client
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    """Measure the engine directly, then through /v1, and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "smollm"], default="tiny")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "tuneboard-bench"))
    args = parser.parse_args()

    from app.engine.catalog import SMOLLM2
    from app.engine.chat_types import ChatParams, ModelRef
    from app.engine.inference import ChatEngine
    from app.engine.testing import build_tiny_model
    from app.tables.migrate import upgrade
    from tests.conftest import API_KEY, free_port, make_settings

    data = Path(args.data_dir)
    local = {"tiny": build_tiny_model(data / "tiny-llama")} if args.model == "tiny" else {}
    name = "tiny" if args.model == "tiny" else SMOLLM2
    settings = make_settings(data / "v1-bench", local_models=local)
    upgrade(settings)
    params = ChatParams(temperature=0, max_tokens=args.tokens)
    ref = ModelRef(name, name)
    chat_engine = ChatEngine(settings)
    list(chat_engine.stream_chat(ref, [{"role": "user", "content": "Hi"}], params))  # load and warm up
    direct, served = [], []
    # The server runs in its own process, as in real use: a client in the same process would share its GIL.
    port = free_port()
    env = {
        **os.environ,
        "TUNEBOARD_DATA_DIR": str(settings.data_dir),
        "TUNEBOARD_API_KEY": API_KEY,
        "TUNEBOARD_EMBEDDED_WORKER": "false",
        "TUNEBOARD_LOCAL_MODELS": json.dumps({k: str(v) for k, v in local.items()}),
    }
    command = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        client = _wait_for_server(f"http://127.0.0.1:{port}/v1", API_KEY, server)

        def via_v1(messages):
            stream = client.chat.completions.create(
                model=name, messages=messages, max_tokens=args.tokens, temperature=0, stream=True
            )
            return (c.choices[0].delta.content for c in stream if c.choices)

        list(via_v1([{"role": "user", "content": "Hi"}]))  # the server loads its own copy of the model
        # Interleaved, so load from other processes on the machine hits both sides alike.
        for _ in range(args.runs):
            for prompt in PROMPTS:
                messages = [{"role": "user", "content": prompt}]
                direct.append(_measure(lambda m=messages: (c.text for c in chat_engine.stream_chat(ref, m, params))))
                served.append(_measure(lambda m=messages: via_v1(m)))
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    for label, rows in (("engine", direct), ("/v1", served)):
        print(
            f"{label:7s} ttft={statistics.median(r[0] for r in rows) * 1000:7.1f} ms  "
            f"chunks={statistics.median(r[1] for r in rows):.0f}  "
            f"decode={statistics.median(r[2] for r in rows):7.1f} chunks/s"
        )
    ttft_added = (statistics.median(r[0] for r in served) - statistics.median(r[0] for r in direct)) * 1000
    ratio = statistics.median(r[2] for r in served) / max(statistics.median(r[2] for r in direct), 1e-9)
    print(f"model={name} ttft_added_ms={ttft_added:.1f} decode_ratio_vs_engine={ratio:.2f}")


if __name__ == "__main__":
    main()
