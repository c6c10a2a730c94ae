"""Scale-out on PostgreSQL: job throughput and event latency with 1, 2 and 4 worker processes.

Starts a throwaway PostgreSQL cluster (Debian's `postgresql` package), and for each worker count: a fresh migrated
database, that many worker processes (tests/postgres/worker_main.py: the real Worker and local provider, with the
fake trainer as the engine, so a job is a short subprocess speaking the engine's protocol), then N jobs queued in
one transaction. Reported: jobs per second from enqueue to the last job done, and how long each job event took
from its creation in a worker to a watcher in this process, once woken by LISTEN/NOTIFY
(app/jobs/event_notify.py) and once by polling every 0.2 s (what SQLite does), both watching the same events.
Baselines in the same run: 1 worker for throughput, polling for latency.

    .venv/bin/python bench/scale.py [--jobs 24] [--workers 1,2,4] [--step-seconds 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, col, select  # noqa: E402

from app.jobs import jobs  # noqa: E402
from app.jobs.event_notify import POLL_SECONDS, EventNotifier  # noqa: E402
from app.tables import Job, JobEvent, JobStatus  # noqa: E402
from app.tables.db import make_engine  # noqa: E402
from app.tables.migrate import upgrade  # noqa: E402
from tests.conftest import free_port, make_settings  # noqa: E402
from tests.pg_cluster import ThrowawayCluster  # noqa: E402
from tests.support.builders import make_dataset  # noqa: E402


def template_job(settings, engine) -> Job:
    """One job made through the real launch service (snapshot included); the others are copies of its row."""
    with Session(engine, expire_on_commit=False) as session:
        job = jobs.create_job(
            session, settings, jobs.JobRequest(dataset_id=make_dataset(session).id, hyperparameters={"n_epochs": 1})
        )
        job.status = JobStatus.cancelled  # the template itself is not run
        session.add(job)
        session.commit()
        return job


def enqueue(engine, template: Job, n: int) -> list[str]:
    """n queued copies of the template, committed at once so every worker sees the whole queue together."""
    skip = {"id", "status", "created_at", "updated_at", "started_at", "finished_at", "worker_id", "heartbeat_at"}
    fields = {k: v for k, v in template.model_dump(by_alias=False).items() if k not in skip}
    with Session(engine, expire_on_commit=False) as session:
        made = [Job(**fields) for _ in range(n)]
        session.add_all(made)
        session.commit()
        return [job.id for job in made]


def start_workers(settings, k: int, step_seconds: float) -> list[subprocess.Popen]:
    """k worker processes; returns once each has said it is ready."""
    env = dict(os.environ, TB_FAKE_STEP_SECONDS=str(step_seconds), PYTHONPATH=str(ROOT))
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.postgres.worker_main",
                str(settings.data_dir),
                settings.database_url,
                "--poll",
                "0.05",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(k)
    ]
    for worker in workers:
        assert "ready" in worker.stdout.readline(), "a worker did not start"
    return workers


async def watch(engine, notifier: EventNotifier | None, job_ids: list[str], latencies: list[float]) -> None:
    """Follow every job's events until all are terminal, recording creation-to-arrival of each event; woken by
    the notifier, or by polling when there is none."""

    def read(job_id: str, after: int) -> tuple[list[tuple[int, float]], bool]:
        with Session(engine) as session:
            rows = session.exec(
                select(JobEvent.seq, JobEvent.created_at)
                .where(JobEvent.job_id == job_id, col(JobEvent.seq) > after)
                .order_by(col(JobEvent.seq))
            ).all()
            done = session.get(Job, job_id).status.is_terminal
        return [(seq, created.timestamp()) for seq, created in rows], done

    async def follow(job_id: str) -> None:
        after = (await asyncio.to_thread(read, job_id, 0))[0]
        after = after[-1][0] if after else 0  # only events from now on count
        while True:
            if notifier is not None:
                await notifier.wait_for_new_events(job_id, after, 5.0)
            else:
                await asyncio.sleep(POLL_SECONDS)
            rows, done = await asyncio.to_thread(read, job_id, after)
            now = time.time()
            latencies.extend(now - created for _, created in rows)
            if rows:
                after = rows[-1][0]
            if done and not rows:
                return

    await asyncio.gather(*(follow(j) for j in job_ids))


def one_round(cluster: ThrowawayCluster, root: Path, k: int, n_jobs: int, step_seconds: float, tiny: Path) -> dict:
    """Throughput and latencies with k workers on a fresh database."""
    settings = make_settings(
        root / f"data-{k}",
        database_url=cluster.create_database(),
        local_models={"tiny-llama": tiny},
        default_base_model="tiny-llama",
    )
    upgrade(settings)
    engine = make_engine(settings)
    template = template_job(settings, engine)
    workers = start_workers(settings, k, step_seconds)
    notify_lat: list[float] = []
    poll_lat: list[float] = []
    notifier = EventNotifier(engine)
    try:
        notifier.listener().wait_ready(10)
        started = time.monotonic()
        made = enqueue(engine, template, n_jobs)
        watchers = [
            threading.Thread(target=asyncio.run, args=(watch(engine, waker, made, out),))
            for waker, out in ((notifier, notify_lat), (None, poll_lat))
        ]
        for t in watchers:
            t.start()
        for t in watchers:
            t.join()
        elapsed = time.monotonic() - started
        with Session(engine) as session:
            rows = session.exec(select(Job.status, Job.attempts).where(col(Job.id).in_(made))).all()
        assert all(s == JobStatus.succeeded and a == 1 for s, a in rows), rows
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        notifier.stop()
        engine.dispose()
    return {
        "workers": k,
        "jobs": n_jobs,
        "seconds": elapsed,
        "jobs_per_s": n_jobs / elapsed,
        "notify": notify_lat,
        "poll": poll_lat,
    }


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    """Run the rounds and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--step-seconds", type=float, default=0.01)
    args = parser.parse_args()
    from app.engine.testing import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="tb-scale-") as tmp:
        root = Path(tmp)
        tiny = build_tiny_model(root / "tiny")  # only its tokenizer is used, to launch the template job
        cluster = ThrowawayCluster(free_port()).start()
        try:
            results = [
                one_round(cluster, root, int(k), args.jobs, args.step_seconds, tiny) for k in args.workers.split(",")
            ]
        finally:
            cluster.stop()
    base = results[0]["jobs_per_s"]
    print(f"{args.jobs} jobs of 4 fake-trainer steps ({args.step_seconds} s each); {os.cpu_count()} CPUs\n")
    print(
        "| workers | seconds | jobs/s | vs 1 worker | events | NOTIFY p50 / p95 ms | poll p50 / p95 ms "
        "| poll ÷ NOTIFY (p50) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        n50, n95, p50, p95 = pct(r["notify"], 0.5), pct(r["notify"], 0.95), pct(r["poll"], 0.5), pct(r["poll"], 0.95)
        print(
            f"| {r['workers']} | {r['seconds']:.1f} | {r['jobs_per_s']:.2f} | {r['jobs_per_s'] / base:.2f}× "
            f"| {len(r['notify'])} | {n50:.0f} / {n95:.0f} | {p50:.0f} / {p95:.0f} | {p50 / max(n50, 0.001):.1f}× |"
        )
    print(
        f"\n(mean NOTIFY latency {1000 * statistics.mean(results[-1]['notify']):.0f} ms with "
        f"{results[-1]['workers']} workers)"
    )


if __name__ == "__main__":
    main()
