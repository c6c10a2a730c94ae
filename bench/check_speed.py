"""`tuneboard check` speed: the whole check of 100,000 examples in a file vs tiktoken alone on the same text.

Run: .venv/bin/python bench/check_speed.py [--examples 100000] [--runs 3]
Target (issue #20): within 2x of tiktoken alone encoding the same text in the same run (the strictest baseline of
bench/validate.py: one string per example, encode_ordinary_batch with the counting threads). The check is timed as
the command runs it: read the file, parse and check every line as the import does, count tokens, the Report's
statistics and estimate, per-line findings, and the JSON answer (--json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate import make_dataset, strings_of  # bench/validate.py: the dashboard bench's data


def timed(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    """Run the measurements and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from app.datasets.file_check import check_file
    from app.datasets.validation.modeltable import resolve_model
    from app.datasets.validation.tokens import THREADS, get_encoding

    data = make_dataset(args.examples)
    _, joined = strings_of(data)
    encoding = get_encoding(resolve_model(args.model).encoding)  # built once, outside every timing
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        path.write_bytes(data)
        rows = []
        for _ in range(args.runs):
            baseline, _ = timed(lambda: encoding.encode_ordinary_batch(joined, num_threads=THREADS))
            t_check, text = timed(lambda: json.dumps(check_file(path, args.model).as_dict()))
            rows.append((baseline, t_check))
    tokens = json.loads(text)["train"]["report"]["tokens"]["total"]
    print(f"{args.examples:,} examples, {len(data) / 1e6:.1f} MB, model {args.model}, {tokens:,} tokens")
    print("| run | tiktoken alone (s) | tuneboard check (s) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for i, (baseline, t_check) in enumerate(rows, start=1):
        print(f"| {i} | {baseline:.2f} | {t_check:.2f} | {t_check / baseline:.2f}x |")
    ratio = statistics.median(t / b for b, t in rows)
    print(f"median ratio {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
