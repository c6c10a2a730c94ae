"""Worker processes for the multi-process tests (SQLite and PostgreSQL), each with its own log file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(settings, module: str, *args: str, step_seconds: float) -> subprocess.Popen:
    """`python -m <module> DATA_DIR ARGS…` with the fake trainer's step time; stderr goes to worker.log."""
    env = dict(os.environ, TB_FAKE_STEP_SECONDS=str(step_seconds), PYTHONPATH=str(ROOT))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = settings.data_dir / f"worker-{time.monotonic_ns()}.log"
    with open(log, "wb") as err:
        worker = subprocess.Popen(
            [sys.executable, "-m", module, str(settings.data_dir), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    worker.log = log
    return worker


def stop(*workers: subprocess.Popen, timeout: float = 30) -> None:
    """Ask every worker to stop (SIGTERM), then wait for each."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        worker.wait(timeout=timeout)
