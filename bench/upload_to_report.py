"""Upload to report: from the start of an upload of 100,000 examples until the report has its token totals, against
tiktoken alone encoding the same text, both in the same run.

Run: .venv/bin/python bench/upload_to_report.py [--examples 100000] [--runs 3]
Target (issue #17): end to end (POST /api/datasets/{id}/import, then GET /api/datasets/{id}/report with token
totals) within 2x of tiktoken alone, and the import itself at >= 25,000 examples/s. The server is `tuneboard serve`
in its own process, as people run it; the data is bench/import_export.py's (support chats, 10 % with tools,
2 % invalid). The baseline is bench/validate.py's strictest: the text the counting rule encodes, one string per
example, encode_ordinary_batch with the counting threads (no deduplication, no JSON, no database). Each run
measures the baseline right before its upload, so both see the same load; the load average is printed per run.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_export import _serve_subprocess, setup, write_file  # the import bench's data and server
from validate import strings_of  # the text the counting rule encodes


def timed(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    """Run the measurements and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import httpx

    from app.datasets.validation.tokens import THREADS, get_encoding
    from tests.conftest import free_port

    encoding = get_encoding("o200k_base")  # gpt-4o-mini's, the report's default model; built outside the timings
    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        path = Path(tmp) / "upload.jsonl"
        n = write_file(path, n=args.examples)
        data = path.read_bytes()
        _, joined = strings_of(data)
        settings, engine = setup(Path(tmp) / "data")
        engine.dispose()
        port = free_port()
        stop = _serve_subprocess(settings, port)
        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
        rows = []
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as http:
                for run in range(1, args.runs + 1):
                    load = os.getloadavg()[0]
                    baseline, tokens = timed(lambda: encoding.encode_ordinary_batch(joined, num_threads=THREADS))
                    dataset_id = http.post("/api/datasets", json={"name": f"run {run}"}).json()["id"]
                    start = time.perf_counter()
                    answer = http.post(f"/api/datasets/{dataset_id}/import", files={"file": ("upload.jsonl", data)})
                    imported = time.perf_counter()
                    report = http.get(f"/api/datasets/{dataset_id}/report", params={"split": "all"}).json()
                    end = time.perf_counter()
                    assert answer.json()["imported"] == n, answer.text[:300]
                    assert report["tokens"] and report["tokens"]["total"] > 0, report
                    rows.append((run, load, baseline, imported - start, end - imported, end - start, report))
        finally:
            stop()
    print(
        f"{n:,} examples, {len(data) / 1e6:.1f} MB, {sum(map(len, tokens)):,} tokens in the baseline's text, "
        f"{rows[-1][-1]['tokens']['total']:,} in the report (with the per-message tokens)"
    )
    print("| run | load avg (1 min) | tiktoken alone | upload + import | report | end to end | ratio | import/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run, load, baseline, t_import, t_report, total, _ in rows:
        print(
            f"| {run} | {load:.1f} | {baseline:.2f} s | {t_import:.2f} s | {t_report:.2f} s | {total:.2f} s "
            f"| {total / baseline:.2f}x | {n / t_import:,.0f} |"
        )
    ratio = statistics.median(total / baseline for _, _, baseline, _, _, total, _ in rows)
    print(f"median ratio {ratio:.2f}x (target <= 2x); load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
