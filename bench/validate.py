"""Validation speed: cold validation of 100,000 examples vs tiktoken alone; report from cache, also right after
an edit, a bulk split change, a delete and an add; one live check.

Run: .venv/bin/python bench/validate.py [--examples 100000]
Targets (issue #3): cold (import + checks + token counts + report) within 2x of tiktoken alone encoding the same
text in the same run; report page from cache < 200 ms (an unchanged dataset, and the next report after a
person's change); live check of one example < 20 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
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
    "system",
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
    "café",
    "naïve",
    "東京",
    "données",
    "über",
    "straße",
    "42",
    "3.14",
    "2026",
    "json",
    "api",
    "error",
    "retry",
    "timeout",
    "request",
    "response",
    "hello",
    "thanks",
]


def sentence(rng: random.Random, n: int) -> str:
    """A pseudo-sentence of n words."""
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_dataset(n: int, seed: int = 7) -> bytes:
    """n chat examples as JSONL (~600 bytes each): shared system prompts, varied turns, some tool calls."""
    rng = random.Random(seed)
    systems = [sentence(rng, 14) for _ in range(20)]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    lines = []
    for i in range(n):
        messages = [{"role": "system", "content": rng.choice(systems)}]
        for _ in range(rng.choice((1, 1, 1, 2))):
            messages.append({"role": "user", "content": sentence(rng, rng.randint(6, 24))})
            messages.append({"role": "assistant", "content": sentence(rng, rng.randint(16, 56))})
        record = {"messages": messages}
        if i % 10 == 0:
            call = {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": rng.choice(WORDS)})},
            }
            messages[-1] = {"role": "assistant", "tool_calls": [call]}
            messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": sentence(rng, 6)})
            messages.append({"role": "assistant", "content": sentence(rng, 12)})
            record["tools"] = tools
        lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


def strings_of(data: bytes) -> tuple[list[str], list[str]]:
    """The text the counting rule encodes, for the tiktoken-alone baselines: every string occurrence, and the
    same text joined into one string per example (the fewest tiktoken calls: the strictest baseline)."""
    from app.datasets.validation.tokens import _Plan

    plan = _Plan()
    for line in data.splitlines():
        plan.add(json.loads(line))
    # The baseline encodes every occurrence, not the deduplicated set: the same text a naive counter would.
    out: list[str] = []
    joined: list[str] = []
    texts = plan.texts
    for parts in plan.parts:
        strings = [texts[i] for i, _ in parts]
        out.extend(strings)
        joined.append("\n".join(strings))
    return out, joined


def timed(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def after_changes(session, cache, dataset_id: int, model: str, repeat: int = 5) -> list[tuple[str, float]]:
    """(what changed, median seconds of the next report) for the changes a person makes between two reports."""
    from sqlalchemy import select

    from app.datasets import examples
    from app.datasets.validation.report import build_report
    from app.tables import Example

    ids = list(session.scalars(select(Example.id).where(Example.dataset_id == dataset_id).order_by(Example.id)))
    rng = random.Random(11)

    def edit() -> None:
        example = examples.get_example(session, rng.choice(ids))
        record = example.to_record()
        record["messages"][-1] = {"role": "assistant", "content": sentence(rng, 20)}
        examples.update_example(session, example.id, record, example.version)

    def split_100() -> None:
        examples.bulk_set_split(session, dataset_id, rng.sample(ids, 100), rng.choice(("validation", "train")))

    def delete() -> None:
        victim = ids.pop(rng.randrange(len(ids)))
        examples.delete_example(session, victim)

    def add() -> None:
        record = json.loads(make_dataset(1, seed=rng.randrange(10**6)).decode())
        ids.append(examples.add_example(session, dataset_id, record).id)

    out = []
    build_report(session, dataset_id, model, cache=cache)  # the snapshot the changes apply to
    for label, change in (
        ("one example edited (PUT / editor save)", edit),
        ("split of 100 examples set", split_100),
        ("one example deleted", delete),
        ("one example added", add),
    ):
        times = []
        for _ in range(repeat):
            change()
            times.append(timed(lambda: build_report(session, dataset_id, model, cache=cache))[0])
        out.append((label, statistics.median(times)))
    return out


def main() -> None:
    """Run the measurements and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--model", default="gpt-4o-mini")
    args = parser.parse_args()

    from sqlmodel import Session

    from app.config import Settings
    from app.datasets.importer import import_jsonl
    from app.datasets.validation.live import live_check
    from app.datasets.validation.modeltable import resolve_model
    from app.datasets.validation.report import ReportCache, build_report
    from app.datasets.validation.tokens import THREADS, count_openai, get_encoding
    from app.tables import Dataset
    from app.tables.db import make_engine
    from app.tables.migrate import upgrade

    data = make_dataset(args.examples)
    texts, joined = strings_of(data)
    encoding = get_encoding(resolve_model(args.model).encoding)  # built once, outside every timing
    per_string, _ = timed(lambda: encoding.encode_ordinary_batch(texts, num_threads=THREADS))
    baseline, _ = timed(lambda: encoding.encode_ordinary_batch(joined, num_threads=THREADS))

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), embedded_worker=False)
        upgrade(settings)
        engine = make_engine(settings)
        with Session(engine, expire_on_commit=False) as session:
            dataset = Dataset(name="bench")
            session.add(dataset)
            session.commit()
            cache = ReportCache()  # what the app factory builds for a server
            t_import, _ = timed(lambda: import_jsonl(session, dataset.id, io.BytesIO(data)))
            t_report, report = timed(lambda: build_report(session, dataset.id, args.model, cache=cache))
            cached = [timed(lambda: build_report(session, dataset.id, args.model, cache=cache))[0] for _ in range(5)]
            uncached = []
            for _ in range(3):
                cache.clear()  # as after a restart: every row read, no token recounted
                uncached.append(timed(lambda: build_report(session, dataset.id, args.model, cache=cache))[0])
            changed = after_changes(session, cache, dataset.id, args.model)
        engine.dispose()
    # Counting while importing (validation.fill_token_counts per insert batch, proposed for the importer) would
    # replace the first report's read-back with an in-memory count of the parsed records:
    records = [json.loads(line) for line in data.splitlines()]
    t_count, _ = timed(lambda: count_openai(records, encoding.name))
    t_hooked = t_import + t_count + statistics.median(uncached)
    record = json.loads(data.splitlines()[1])
    live = [timed(lambda: live_check(record, args.model))[0] for _ in range(50)]

    cold = t_import + t_report
    print(
        f"{args.examples:,} examples, {len(data) / 1e6:.1f} MB, {len(texts):,} strings, model {args.model}, "
        f"{report.tokens.total:,} tokens"
    )
    print("| measurement | seconds | ratio / target |")
    print("| --- | ---: | --- |")
    print(
        f"| tiktoken alone: encode_ordinary_batch, one string per example ({THREADS} threads) | {baseline:.2f} "
        "| baseline |"
    )
    print(
        f"| tiktoken alone: encode_ordinary_batch of every string occurrence | {per_string:.2f} | "
        f"{per_string / baseline:.2f}x |"
    )
    print(f"| import (parse, checks, insert) | {t_import:.2f} | |")
    print(f"| first report (count tokens, store counts, statistics) | {t_report:.2f} | |")
    print(f"| cold validation = import + first report | {cold:.2f} | {cold / baseline:.2f}x (target <= 2x) |")
    print(f"| counting alone, in memory, all examples | {t_count:.2f} | {t_count / baseline:.2f}x |")
    print(
        f"| estimated cold if the importer counted per batch (import + count + report) | {t_hooked:.2f} | "
        f"{t_hooked / baseline:.2f}x (target <= 2x) |"
    )
    print(f"| report of an unchanged dataset (median of 5) | {statistics.median(cached):.3f} | target < 0.200 |")
    print(
        f"| report after a restart: every row read, counts cached (median of 3) | {statistics.median(uncached):.3f} | |"
    )
    for label, seconds in changed:
        print(f"| report right after: {label} (median of 5) | {seconds:.3f} | target < 0.200 |")
    print(f"| live check of one example (median of 50) | {statistics.median(live) * 1000:.2f} ms | target < 20 ms |")


if __name__ == "__main__":
    main()
