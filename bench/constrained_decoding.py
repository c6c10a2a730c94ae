"""Constrained decoding's cost on SmolLM2 (issue #22): tokens/s under a strict json_schema vs unconstrained.

Run: .venv/bin/python bench/constrained_decoding.py [--rounds 4] [--data-dir /tmp/tuneboard-bench]
Target: constrained decoding costs at most 15% of unconstrained tokens/s (same prompts, same run).

Streamed: each prompt is answered under the schema, then without it for as many tokens (max_tokens = the
constrained reply's length, so both decode at the same positions); greedy, model loaded, grammar compiled; rounds
alternate the two so that a change in the machine's load hits both. Decode rate is taken past the first token.
Batched (generate_batch, as eval runs decode): 32 conversations through 8 slots at temperature 1.0, then the same
unconstrained for the constrained replies' mean length; tokens/s of the whole batch.
The load average and the cores other processes kept busy are printed with each figure.
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
    "Invent a person and describe them: name, age, favourite color, hobbies, and whether they are a student.",
    "Describe a character for a story about pirates.",
    "Tell me about a friend of yours who likes music.",
    "Make up a profile for a new employee at a bakery.",
]
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "color": {"enum": ["red", "green", "blue", "yellow"]},
        "hobbies": {"type": "array", "items": {"type": "string", "maxLength": 16}, "minItems": 1, "maxItems": 3},
        "student": {"type": "boolean"},
    },
    "required": ["name", "age", "color", "hobbies", "student"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}


def _load(engine) -> str:
    return f"load {os.getloadavg()[0]:.2f}, other processes {engine.cores.others_busy():.2f} cores"


def _stream(engine, ref, prompt: str, params) -> tuple[int, float]:
    """Tokens of a streamed reply and its decode rate past the first token."""
    started = time.perf_counter()
    first = None
    last = None
    for chunk in engine.stream_chat(ref, [{"role": "user", "content": prompt}], params):
        if first is None:
            first = time.perf_counter()
        last = chunk
    total = time.perf_counter() - started
    assert first is not None and last is not None and last.usage is not None
    tokens = last.usage["completion_tokens"]
    return tokens, (tokens - 1) / (total - (first - started)) if tokens > 1 else 0.0


def main() -> None:
    """Measure, print one line per reply and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "tuneboard-bench"))
    args = parser.parse_args()
    from app.config import Settings
    from app.engine import _hf
    from app.engine.catalog import SMOLLM2
    from app.engine.chat_types import ChatParams, ModelRef
    from app.engine.inference import ChatEngine

    settings = Settings(data_dir=Path(args.data_dir))
    engine = ChatEngine(settings)
    _hf.prepare(settings.engine_spin)
    import torch

    ref = ModelRef(SMOLLM2, SMOLLM2)
    started = time.perf_counter()
    engine.get_model(ref)
    print(f"model load: {time.perf_counter() - started:.2f} s (threads={torch.get_num_threads()})")
    constrained = ChatParams(temperature=0, max_tokens=192, response_format=RESPONSE_FORMAT)
    started = time.perf_counter()
    _stream(engine, ref, "Hi", ChatParams(temperature=0, max_tokens=2, response_format=RESPONSE_FORMAT))
    print(
        f"first constrained reply (tokenizer info + grammar compile + 2 tokens): {time.perf_counter() - started:.2f} s"
    )

    # The grammar's own time per token: Guide.choose less the sampling inside it (which an unconstrained reply does
    # too), summed over the constrained replies; the cost without the noise of other processes.
    from app.engine import constrained as constrained_module

    clock = {"choose": 0.0, "sampling": 0.0}
    choose, sample = constrained_module.Guide.choose, constrained_module.next_token

    def timed_choose(self, logits, params, generator):
        began = time.perf_counter()
        try:
            return choose(self, logits, params, generator)
        finally:
            clock["choose"] += time.perf_counter() - began

    def timed_sample(logits, params, generator):
        began = time.perf_counter()
        try:
            return sample(logits, params, generator)
        finally:
            clock["sampling"] += time.perf_counter() - began

    constrained_module.Guide.choose = timed_choose
    constrained_module.next_token = timed_sample

    def grammar_seconds() -> float:
        spent = clock["choose"] - clock["sampling"]
        clock["choose"] = clock["sampling"] = 0.0
        return spent

    lengths = {prompt: _stream(engine, ref, prompt, constrained)[0] for prompt in PROMPTS}  # greedy: fixed lengths
    grammar_seconds()
    rates: dict[str, list[float]] = {"constrained": [], "unconstrained": []}
    costs: list[float] = []  # per back-to-back pair: the load changes less within a pair than across the run
    decode_time = 0.0
    for round_ in range(args.rounds):
        for prompt in PROMPTS:
            n = lengths[prompt]
            runs = [("constrained", constrained), ("unconstrained", ChatParams(temperature=0, max_tokens=n))]
            line, pair = [], {}
            for name, params in runs if round_ % 2 == 0 else runs[::-1]:  # alternate which goes first
                tokens, rate = _stream(engine, ref, prompt, params)
                rates[name].append(rate)
                pair[name] = rate
                line.append(f"{name} {tokens} tokens {rate:.1f} tok/s")
                if name == "constrained":
                    decode_time += (tokens - 1) / rate
            costs.append(1 - pair["constrained"] / pair["unconstrained"])
            print(f"round {round_ + 1}: {' | '.join(line)} ({_load(engine)})")
    for label, pick in (("median", statistics.median), ("best", max)):
        c, u = pick(rates["constrained"]), pick(rates["unconstrained"])
        print(f"streamed, {label}: constrained {c:.1f} tok/s, unconstrained {u:.1f} tok/s, cost {1 - c / u:+.1%}")
    print(f"streamed, median of the {len(costs)} back-to-back pairs' costs: {statistics.median(costs):+.1%}")
    print(f"streamed, the grammar's own time: {grammar_seconds() / decode_time:.1%} of the constrained decode time")

    # Batched: 32 conversations through 8 slots, so that slots refill and the batch stays full most of the time;
    # the unconstrained replies may run as many tokens as the constrained ones did on average (some end sooner).
    conversations = [[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}] for i in range(32)]
    schema_params = ChatParams(temperature=1.0, max_tokens=192, seed=0, response_format=RESPONSE_FORMAT)
    warm = engine.generate_batch(ref, conversations, schema_params, batch_size=8)
    mean = round(sum(reply.completion_tokens for reply in warm) / len(conversations))
    grammar_seconds()
    batch_rates: dict[str, list[float]] = {"constrained": [], "unconstrained": []}
    costs, batch_time = [], 0.0
    for round_ in range(args.rounds):
        runs = [("constrained", schema_params), ("unconstrained", ChatParams(temperature=1.0, max_tokens=mean, seed=0))]
        pair = {}
        for name, params in runs if round_ % 2 == 0 else runs[::-1]:
            started = time.perf_counter()
            replies = engine.generate_batch(ref, conversations, params, batch_size=8)
            elapsed = time.perf_counter() - started
            tokens = sum(reply.completion_tokens for reply in replies)
            batch_rates[name].append(tokens / elapsed)
            pair[name] = tokens / elapsed
            if name == "constrained":
                batch_time += elapsed
            print(f"batch round {round_ + 1}: {name} {tokens} tokens in {elapsed:.2f} s, "
                  f"{tokens / elapsed:.1f} tok/s ({_load(engine)})")  # fmt: skip
        costs.append(1 - pair["constrained"] / pair["unconstrained"])
    for label, pick in (("median", statistics.median), ("best", max)):
        c, u = pick(batch_rates["constrained"]), pick(batch_rates["unconstrained"])
        print(f"batched, {label}: constrained {c:.1f} tok/s, unconstrained {u:.1f} tok/s, cost {1 - c / u:+.1%}")
    print(f"batched, median of the {len(costs)} back-to-back pairs' costs: {statistics.median(costs):+.1%}")
    print(f"batched, the grammar's own time: {grammar_seconds() / batch_time:.1%} of the constrained batches' time")
    engine.close()


if __name__ == "__main__":
    main()
