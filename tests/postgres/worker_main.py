"""A worker process on PostgreSQL for tests and bench/scale.py: the real Worker, the fake trainer as engine.

python -m tests.postgres.worker_main DATA_DIR DATABASE_URL [--once] [--cpu] [--providers local,openai]
"""

from __future__ import annotations

import argparse
import signal
import sys

from app.tables.db import make_engine
from app.worker.loop import Worker
from tests.conftest import make_settings
from tests.support.worker_main import FAKE_TRAINER


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("database_url")
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="no GPU: leave fresh local jobs to GPU workers")
    parser.add_argument("--providers", default="local")
    parser.add_argument("--poll", type=float, default=0.05)
    args = parser.parse_args()
    settings = make_settings(
        args.data_dir, database_url=args.database_url, heartbeat_seconds=0.3, worker_poll_seconds=args.poll
    )
    engine = make_engine(settings)
    worker = Worker(
        settings,
        engine,
        providers=args.providers.split(","),
        gpu=not args.cpu,
        provider_options={"local": {"command": FAKE_TRAINER}},
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.shutdown.set())
    print(f"worker {worker.worker_id} ready", flush=True)
    try:
        worker.run(once=args.once)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
