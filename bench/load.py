"""Load: 20 concurrent editors and 50 live-log watchers against a real server on loopback.

python bench/load.py [--seconds 60] [--editors 20] [--watchers 50] [--out FILE]

Editors read an example, save it with the version they read (and now and then with a stale version, which must
be refused with 409 and a message). Watchers hold the job page's event stream open while events are written.
Reports server errors, lost edits, and p50/p99 latency of reads and saves, plus a baseline (GET /healthz, idle
server) measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "tb-bench-key-0123456789"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    """The real `tuneboard serve` (no embedded worker: the bench writes the job's events itself)."""
    env = {
        **os.environ,
        "TUNEBOARD_DATA_DIR": str(data_dir),
        "TUNEBOARD_API_KEY": KEY,
        "TUNEBOARD_LOG_LEVEL": "warning",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # waiting on another process's startup: nothing to await
    process.kill()
    raise SystemExit("the server did not start")


def seed(base: str, editors: int) -> tuple[list[int], int]:
    """A dataset with one example per editor; returns (example ids, dataset id)."""
    h = {"Authorization": f"Bearer {KEY}"}
    dataset_id = httpx.post(f"{base}/api/datasets", json={"name": "load"}, headers=h).json()["id"]
    ids = []
    for i in range(editors):
        body = {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a0"}]}
        ids.append(httpx.post(f"{base}/api/datasets/{dataset_id}/examples", json=body, headers=h).json()["id"])
    return ids, dataset_id


def make_job(data_dir: Path) -> tuple[str, threading.Event]:
    """A running job and a thread writing an event to it every 200 ms until the returned event is set."""
    sys.path.insert(0, str(ROOT))
    from sqlmodel import Session

    from app.config import Settings
    from app.tables import Job, JobEvent, JobStatus
    from app.tables.db import make_engine

    engine = make_engine(Settings(data_dir=data_dir))
    with Session(engine) as s:
        job = Job(model="bench", status=JobStatus.running.value)
        s.add(job)
        s.commit()
        job_id = job.id
    stop = threading.Event()

    def write():
        step = 0
        while not stop.wait(0.2):
            step += 1
            with Session(engine) as s:
                s.add(JobEvent(job_id=job_id, message=f"Step {step}"))
                s.add(
                    JobEvent(
                        job_id=job_id,
                        type="metrics",
                        message=f"Step {step}",
                        data={"step": step, "train_loss": 1.0 / step},
                    )
                )
                s.commit()
        engine.dispose()

    threading.Thread(target=write, daemon=True).start()
    return job_id, stop


class Stats:
    """Latencies and outcomes, shared by the tasks of one event loop."""

    def __init__(self):
        self.read: list[float] = []
        self.save: list[float] = []
        self.errors: list[str] = []
        self.saved: dict[int, str] = {}
        self.saves = self.stale_refused = self.stale_accepted = self.events = 0


async def editor(client: httpx.AsyncClient, example_id: int, me: int, stats: Stats, until: float) -> None:
    """Read, edit and save in a loop until `until`."""
    n = 0
    while time.monotonic() < until:
        try:
            await _edit_once(client, example_id, me, stats, n := n + 1)
        except httpx.TransportError as exc:  # a timeout counts as a server failure, and the editor goes on
            stats.errors.append(f"editor {type(exc).__name__}")


async def _edit_once(client: httpx.AsyncClient, example_id: int, me: int, stats: Stats, n: int) -> None:
    """One read and one save (every fifth save reuses an old version and must be refused)."""
    t = time.perf_counter()
    r = await client.get(f"/api/examples/{example_id}")
    stats.read.append(time.perf_counter() - t)
    if r.status_code >= 500:
        stats.errors.append(f"GET {r.status_code}")
        return
    current = r.json()
    stale = n % 5 == 0 and current["version"] > 1
    text = f"editor {me} edit {n}"
    body = {
        "messages": [current["messages"][0], {"role": "assistant", "content": text}],
        "version": current["version"] - 1 if stale else current["version"],
    }
    t = time.perf_counter()
    r = await client.put(f"/api/examples/{example_id}", json=body)
    stats.save.append(time.perf_counter() - t)
    if r.status_code >= 500:
        stats.errors.append(f"PUT {r.status_code}")
    elif stale:
        if r.status_code == 409 and r.json().get("detail"):
            stats.stale_refused += 1
        else:
            stats.stale_accepted += 1
    elif r.status_code == 200:
        stats.saves += 1
        stats.saved[example_id] = text
    else:
        stats.errors.append(f"PUT {r.status_code} {r.text[:80]}")


async def watcher(client: httpx.AsyncClient, job_id: str, stats: Stats, until: float) -> None:
    """Hold the event stream open and count the log events that arrive."""
    try:
        async with client.stream("GET", f"/jobs/{job_id}/events/stream") as r:
            if r.status_code >= 500:
                stats.errors.append(f"stream {r.status_code}")
                return
            async for line in r.aiter_lines():
                if line == "event: log":
                    stats.events += 1
                if time.monotonic() >= until:
                    return
    except httpx.TransportError as exc:
        stats.errors.append(f"stream {type(exc).__name__}")


async def baseline(base: str, seconds: float) -> list[float]:
    """GET /healthz one at a time on the idle server: the floor every ratio is measured against."""
    out = []
    async with httpx.AsyncClient(base_url=base) as c:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            t = time.perf_counter()
            await c.get("/healthz")
            out.append(time.perf_counter() - t)
    return out


async def run(base: str, ids: list[int], job_id: str, args) -> tuple[Stats, list[float]]:
    """Baseline first, then editors and watchers together for args.seconds."""
    floor = await baseline(base, 5)
    stats = Stats()
    until = time.monotonic() + args.seconds
    limits = httpx.Limits(max_connections=args.editors + args.watchers + 10)
    timeout = httpx.Timeout(30, read=60)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=timeout) as api,
        httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as pages,
    ):
        tasks = [editor(api, ids[i], i, stats, until) for i in range(args.editors)]
        tasks += [watcher(pages, job_id, stats, until) for _ in range(args.watchers)]
        await asyncio.gather(*tasks)
    return stats, floor


def lost_edits(base: str, stats: Stats) -> int:
    """Examples whose stored text is not the last save their editor saw succeed."""
    h = {"Authorization": f"Bearer {KEY}"}
    lost = 0
    for example_id, text in stats.saved.items():
        stored = httpx.get(f"{base}/api/examples/{example_id}", headers=h).json()
        lost += stored["messages"][1]["content"] != text
    return lost


def ms(values: list[float], q: float) -> float:
    """A quantile in milliseconds."""
    if not values:
        return float("nan")
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000
        if len(values) > 1
        else values[0] * 1000
    )


def report(stats: Stats, floor: list[float], lost: int, args) -> str:
    """The results as the Markdown section for bench/README.md."""
    base50 = ms(floor, 50)
    rows = [
        ("baseline GET /healthz (idle)", floor),
        ("editor GET /api/examples/{id}", stats.read),
        ("editor PUT /api/examples/{id}", stats.save),
    ]
    lines = [
        "## Load: concurrent editors and live-log watchers (`bench/load.py`)",
        "",
        f"{args.editors} editors and {args.watchers} event-stream watchers for {args.seconds:g} s on loopback, "
        f"one server process (`tuneboard serve --no-worker`), SQLite, {os.cpu_count()} CPUs.",
        "",
        "| request | n | p50 ms | p99 ms | p50 / baseline p50 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {len(values)} | {ms(values, 50):.1f} | {ms(values, 99):.1f} | {ms(values, 50) / base50:.1f}× |"
        )
    lines += [
        "",
        f"- server errors: **{len(stats.errors)}** {sorted(set(stats.errors))[:5]}",
        f"- lost edits: **{lost}** (successful saves: {stats.saves})",
        f"- stale saves refused with 409 and a message: {stats.stale_refused}; wrongly accepted: "
        f"**{stats.stale_accepted}**",
        f"- log events delivered to watchers: {stats.events} ({stats.events / max(args.watchers, 1):.0f} per watcher)",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Run the load, print and write the results; exit 1 on any server error or lost edit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--editors", type=int, default=20)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown section to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp) / "data", free_port()
        server = start_server(data_dir, port)
        base = f"http://127.0.0.1:{port}"
        try:
            ids, _ = seed(base, args.editors)
            job_id, stop_events = make_job(data_dir)
            stats, floor = asyncio.run(run(base, ids, job_id, args))
            stop_events.set()
            lost = lost_edits(base, stats)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    text = report(stats, floor, lost, args)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    print(json.dumps({"server_errors": len(stats.errors), "lost_edits": lost}))
    return 1 if stats.errors or lost or stats.stale_accepted else 0


if __name__ == "__main__":
    sys.exit(main())
