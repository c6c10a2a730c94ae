"""Import/export speed and the dataset page's server time at 100,000 examples; peak memory of a 500 MB import.

Run: .venv/bin/python bench/import_export.py [--examples 100000] [--big-mb 500] [--skip-big]
Everything happens in a temporary data dir. Targets (2-core machine): import >= 25,000 examples/s,
export >= 100,000 examples/s, dataset page < 50 ms, 500 MB import with peak memory < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = [
    "the",
    "order",
    "shipped",
    "yesterday",
    "and",
    "should",
    "arrive",
    "within",
    "three",
    "business",
    "days",
    "please",
    "check",
    "the",
    "tracking",
    "link",
    "we",
    "sent",
    "by",
    "email",
    "if",
    "anything",
    "looks",
    "wrong",
    "let",
    "me",
    "know",
    "and",
    "I",
    "will",
    "open",
    "a",
    "ticket",
    "for",
    "you",
    "right",
    "away",
    "refund",
    "policy",
    "allows",
    "returns",
    "within",
    "thirty",
    "days",
    "of",
    "delivery",
    "when",
    "items",
    "are",
    "unused",
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look up an order by id.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
        },
    }
]


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    """Random plausible words."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."


def example(rng: random.Random) -> dict:
    """One realistic chat example (~600 bytes): system, 1-3 turns, sometimes tools or weights."""
    messages = [{"role": "system", "content": "You are a helpful, concise support assistant for an online shop."}]
    for turn in range(rng.choice((1, 1, 2, 3))):
        messages.append({"role": "user", "content": sentence(rng, 6, 25)})
        answer = {"role": "assistant", "content": sentence(rng, 10, 45)}
        if turn == 0 and rng.random() < 0.1:
            answer["weight"] = 0
        messages.append(answer)
    if rng.random() < 0.02:
        messages = messages[:2]  # no assistant answer: imported, flagged invalid
    record = {"messages": messages}
    if rng.random() < 0.1:
        record["tools"] = TOOLS
    return record


def write_file(path: Path, n: int | None = None, target_bytes: int | None = None, seed: int = 1) -> int:
    """Write examples as JSONL; returns how many."""
    rng = random.Random(seed)
    count = size = 0
    with path.open("w", encoding="utf-8") as f:
        while (n is not None and count < n) or (target_bytes is not None and size < target_bytes):
            text = json.dumps(example(rng)) + "\n"
            f.write(text)
            size += len(text)
            count += 1
    return count


def setup(data_dir: Path):
    """Settings, migrated database and engine in data_dir."""
    from app.config import Settings
    from app.tables.db import make_engine
    from app.tables.migrate import upgrade

    settings = Settings(data_dir=data_dir, embedded_worker=False, api_key="bench-key-0123456789", secret_key="s" * 40)
    upgrade(settings)
    return settings, make_engine(settings)


def process_cpu() -> float:
    """CPU seconds of this process so far, every thread, user and system (the HTTP client and server share it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def bench_services(engine, path: Path, n: int) -> dict:
    """Import and export through the service layer."""
    from sqlmodel import Session

    from app.datasets.datasets import create_dataset
    from app.datasets.examples import split_randomly
    from app.datasets.exporter import export_jsonl
    from app.datasets.importer import import_jsonl

    with Session(engine) as session:
        dataset_id = create_dataset(session, "bench").id
        with path.open("rb") as f:
            cpu = time.process_time()
            result, seconds = timed(lambda: import_jsonl(session, dataset_id, f))
            cpu = time.process_time() - cpu
        assert result.imported == n and not result.rejected, (result.imported, result.rejected[:3])
        # CPU seconds beside wall seconds: on a shared machine the wall time also counts other people's work.
        out = {"import_s": seconds, "import_per_s": n / seconds, "import_cpu_s": cpu}
        _, out["split_s"] = timed(lambda: split_randomly(session, dataset_id, 10, seed=1))
        size, seconds = timed(lambda: sum(len(b) for b in export_jsonl(session, dataset_id, only_valid=False)))
        out.update(export_s=seconds, export_per_s=n / seconds, export_bytes=size)

        # Baseline in the same run: just reading and json-parsing the file, the least an import can do.
        def parse():
            with path.open("rb") as f:
                return sum(1 for line in f if json.loads(line))

        _, seconds = timed(parse)
        out["baseline_parse_per_s"] = n / seconds

        # Second baseline: parse, checks and serialisation of each row (the importer's CPU half), no database.
        def parse_and_check():
            from app.datasets.import_rows import prepare_record

            with path.open("rb") as f:
                for line in f:
                    prepare_record(json.loads(line))

        _, seconds = timed(parse_and_check)
        out["baseline_check_per_s"] = n / seconds
    return {**out, "dataset_id": dataset_id}


def bench_page(app, dataset_id: int) -> dict:
    """Server time of the dataset page (median of 15, in-process ASGI, no network)."""
    from fastapi.testclient import TestClient

    results = {}
    with TestClient(app, base_url="http://127.0.0.1") as client:  # a loopback name: the Host check answers it
        client.get("/healthz")
        for label, query in (
            ("first page", ""),
            ("last page", "?offset=99950"),
            ("invalid filter", "?valid=invalid"),
            ("train filter", "?split=train"),
            ("search", "?q=refund+policy+allows"),
            ("sort errors", "?sort=errors"),
        ):
            times = []
            for _ in range(15):
                start = time.perf_counter()
                response = client.get(f"/datasets/{dataset_id}{query}", headers={"HX-Request": "true"})
                times.append(time.perf_counter() - start)
                assert response.status_code == 200
            results[label] = statistics.median(times) * 1000
        times = []
        for _ in range(15):
            start = time.perf_counter()
            client.get("/healthz")
            times.append(time.perf_counter() - start)
        results["baseline /healthz"] = statistics.median(times) * 1000
    return results


def _serve_in_process(settings, port: int):
    """uvicorn in a thread of this process (client and server then share one interpreter and its GIL)."""
    import uvicorn

    from app.main import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return stop


def _serve_subprocess(settings, port: int):
    """`tuneboard serve` in its own process, as people run it: the client (a browser, a script) is elsewhere."""
    import httpx

    env = dict(
        os.environ,
        DATA_DIR=str(settings.data_dir),
        TUNEBOARD_API_KEY=settings.api_key.get_secret_value(),
        TUNEBOARD_SECRET_KEY="s" * 40,
        TUNEBOARD_LOG_LEVEL="warning",
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--no-worker", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:  # no readiness event crosses the process boundary: poll /healthz until it answers
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if child.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the server process did not start")
        time.sleep(0.1)

    def stop() -> None:
        child.terminate()
        child.wait(timeout=20)

    return stop


def bench_http(settings, path: Path, n: int, *, separate_process: bool) -> dict:
    """Import and export through a real uvicorn server over loopback HTTP."""
    import httpx

    from tests.conftest import free_port

    port = free_port()
    stop = (_serve_subprocess if separate_process else _serve_in_process)(settings, port)
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=600) as http:
            dataset_id = http.post("/api/datasets", json={"name": "http"}).json()["id"]
            with path.open("rb") as f:
                cpu = process_cpu()
                response, seconds = timed(
                    lambda: http.post(f"/api/datasets/{dataset_id}/import", files={"file": ("b.jsonl", f)})
                )
                cpu = process_cpu() - cpu
            assert response.json()["imported"] == n
            out = {"http_import_s": seconds, "http_import_per_s": n / seconds, "http_import_cpu_s": cpu}

            def download():
                with http.stream("GET", f"/api/datasets/{dataset_id}/export?only_valid=false") as r:
                    return sum(len(chunk) for chunk in r.iter_bytes())

            _, seconds = timed(download)
            out.update(http_export_s=seconds, http_export_per_s=n / seconds)
    finally:
        stop()
    return out


def big_child(path: str, data_dir: str) -> None:
    """Import one big file in this (fresh) process and print its peak RSS."""
    from sqlmodel import Session

    from app.datasets.datasets import create_dataset
    from app.datasets.importer import import_jsonl

    _, engine = setup(Path(data_dir))
    with Session(engine) as session, open(path, "rb") as f:
        dataset_id = create_dataset(session, "big").id
        result, seconds = timed(lambda: import_jsonl(session, dataset_id, f))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"imported": result.imported, "seconds": seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--big-mb", type=int, default=500)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--big-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big_child:
        big_child(*args.big_child)
        return
    from app.main import create_app

    with tempfile.TemporaryDirectory(prefix="tuneboard-bench-") as tmp:
        tmp_path = Path(tmp)
        path = tmp_path / "bench.jsonl"
        n = write_file(path, n=args.examples)
        print(f"{n:,} examples, {path.stat().st_size / 1e6:.1f} MB")
        settings, engine = setup(tmp_path / "data")
        services = bench_services(engine, path, n)
        print(
            f"service import: {services['import_per_s']:,.0f} examples/s ({services['import_s']:.2f} s, "
            f"{services['import_cpu_s']:.2f} s CPU); "
            f"baseline read+json.loads: {services['baseline_parse_per_s']:,.0f}/s "
            f"(import = {services['import_per_s'] / services['baseline_parse_per_s']:.2f}x baseline)"
        )
        print(
            f"baseline read+parse+checks+serialisation (no database): {services['baseline_check_per_s']:,.0f}/s "
            f"(import = {services['import_per_s'] / services['baseline_check_per_s']:.2f}x this baseline)"
        )
        print(f"split randomly (10% validation): {services['split_s']:.2f} s")
        print(
            f"service export: {services['export_per_s']:,.0f} examples/s ({services['export_s']:.2f} s, "
            f"{services['export_bytes'] / 1e6:.1f} MB)"
        )
        page = bench_page(create_app(settings), services["dataset_id"])
        for label, ms in page.items():
            print(f"dataset page, {label}: {ms:.1f} ms")
        for separate, where in ((True, "server in its own process"), (False, "client and server in one process")):
            http = bench_http(settings, path, n, separate_process=separate)
            print(
                f"HTTP import ({where}): {http['http_import_per_s']:,.0f} examples/s "
                f"({http['http_import_s']:.2f} s, {http['http_import_cpu_s']:.2f} s CPU in this process); "
                f"HTTP export: {http['http_export_per_s']:,.0f} examples/s ({http['http_export_s']:.2f} s)"
            )
        engine.dispose()
        if not args.skip_big:
            big = tmp_path / "big.jsonl"
            count = write_file(big, target_bytes=args.big_mb * 1_000_000, seed=2)
            path.unlink()
            print(f"big file: {count:,} examples, {big.stat().st_size / 1e6:.0f} MB")
            child = subprocess.run(
                [sys.executable, __file__, "--big-child", str(big), str(tmp_path / "big-data")],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ},
            )
            report = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"big import: {report['imported']:,} examples in {report['seconds']:.1f} s "
                f"({report['imported'] / report['seconds']:,.0f}/s), peak RSS {report['peak_rss_mb']:.0f} MB"
            )


if __name__ == "__main__":
    main()
