"""SSE delivery latency: a writer appends job events while N clients watch the job's stream on loopback.

Starts a real uvicorn server in a subprocess on a fresh database, opens N streams with httpx, writes events at a
steady rate, and reports how long each event took from commit to arrival (p50/p99), plus the server's CPU.
Baseline in the same run: one client, so the ratio shows what the fan-out costs.

    .venv/bin/python bench/sse_latency.py [--clients 100] [--events 50] [--interval 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = """
import sys, uvicorn
from app.config import Settings
from app.main import create_app
settings = Settings(data_dir=sys.argv[1], embedded_worker=False, api_key="bench-key-0123456789", secret_key="s" * 40)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
STAMP = re.compile(r"bench t=([0-9.]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def watch(
    client: httpx.AsyncClient, url: str, expected: int, latencies: list[float], ready: asyncio.Event, counter: list[int]
):
    async with client.stream("GET", url) as response:
        seen = 0
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        async for line in response.aiter_lines():
            if line.startswith("data: ") and "bench t=" in line:
                latencies.append(time.time() - float(STAMP.search(line).group(1)))
                seen += 1
                if seen >= expected:
                    return


def write_events(engine, job_id: str, n: int, interval: float) -> None:
    from sqlmodel import Session

    from app.tables import JobEvent

    for _ in range(n):
        with Session(engine) as s:
            s.add(JobEvent(job_id=job_id, message=f"bench t={time.time():.6f}"))
            s.commit()
        time.sleep(interval)


async def run(clients: int, events: int, interval: float, engine, job_id: str, url: str, pid: int) -> dict:
    latencies: list[float] = []
    ready = asyncio.Event()
    counter = [0, clients]
    # One client object with a big pool: building 100 clients (each loads CA certificates) would dominate the run.
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(30, read=120),
        limits=httpx.Limits(max_connections=clients + 10, max_keepalive_connections=0),
    )
    tasks = [asyncio.create_task(watch(client, url, events, latencies, ready, counter)) for _ in range(clients)]
    try:
        await asyncio.wait_for(ready.wait(), 120)
    except TimeoutError:
        raise SystemExit(f"only {counter[0]} of {clients} streams opened in 120 s") from None
    await asyncio.sleep(0.5)  # let every stream reach its waiting loop
    proc = psutil.Process(pid)
    cpu0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
    await asyncio.to_thread(write_events, engine, job_id, events, interval)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    await client.aclose()
    cpu = (sum(proc.cpu_times()[:2]) - cpu0) / (time.monotonic() - t0)
    q = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "delivered": len(latencies),
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "server_cpu_pct": cpu * 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between written events")
    args = parser.parse_args()

    from sqlmodel import Session

    from app.config import Settings
    from app.tables import Job
    from app.tables.db import make_engine
    from app.tables.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), embedded_worker=False)
        upgrade(settings)
        engine = make_engine(settings)
        with Session(engine) as s:
            job = Job(model="bench", status="running")
            s.add(job)
            s.commit()
            job_id = job.id
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, tmp, str(port)], cwd=ROOT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise SystemExit("server did not start") from None
                    time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/jobs/{job_id}/events/stream"
            results = []
            for n in (1, args.clients):
                url_n = url  # every run reads from the start of new events only
                with Session(engine) as s:
                    from app.jobs.monitoring import last_seq

                    url_n = f"{url}?after={last_seq(s, job_id)}"
                results.append(asyncio.run(run(n, args.events, args.interval, engine, job_id, url_n, server.pid)))
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
            engine.dispose()
    print(
        f"SSE delivery latency, {args.events} events every {args.interval * 1000:.0f} ms, loopback, "
        f"{os.cpu_count()} CPUs"
    )
    print("| clients | delivered | p50 ms | p99 ms | server CPU % |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['clients']} | {r['delivered']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['server_cpu_pct']:.0f} |"
        )
    base, full = results
    cpu_ratio = full["server_cpu_pct"] / max(base["server_cpu_pct"], 0.1)
    print(
        f"\nratio {full['clients']} clients / 1 client: p50 ×{full['p50_ms'] / base['p50_ms']:.2f}, "
        f"p99 ×{full['p99_ms'] / base['p99_ms']:.2f}, CPU ×{cpu_ratio:.1f}"
    )
    targets_met = full["p50_ms"] < 200 and full["p99_ms"] < 1000
    print(f"targets (p50 < 200 ms, p99 < 1 s): {'met' if targets_met else 'NOT met'}")


if __name__ == "__main__":
    main()
