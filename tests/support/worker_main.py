"""A worker process for tests: the real Worker, with the local provider's trainer swapped for fake_trainer.

python -m tests.support.worker_main DATA_DIR [--heartbeat-timeout S] [--heartbeat S] [--once]
"""

from __future__ import annotations

import argparse
import signal
import sys

from app.tables.db import make_engine
from app.worker.loop import Worker
from tests.conftest import make_settings

FAKE_TRAINER = [sys.executable, "-m", "tests.support.fake_trainer"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir")
    parser.add_argument("--heartbeat-timeout", type=float, default=30.0)
    parser.add_argument("--heartbeat", type=float, default=0.3)
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    settings = make_settings(
        args.data_dir,
        heartbeat_timeout_seconds=args.heartbeat_timeout,
        heartbeat_seconds=args.heartbeat,
        worker_poll_seconds=0.1,
    )
    engine = make_engine(settings)
    worker = Worker(settings, engine, providers=["local"], provider_options={"local": {"command": FAKE_TRAINER}})
    signal.signal(signal.SIGTERM, lambda *_: worker.shutdown.set())
    print(f"worker {worker.worker_id} ready", flush=True)
    worker.run(once=args.once)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
