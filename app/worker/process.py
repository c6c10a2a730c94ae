"""`tuneboard worker`: a standalone worker process against the same database."""

from __future__ import annotations

import logging
import signal

from app.config import Settings
from app.tables.db import make_engine
from app.worker.loop import Worker


def run_worker_process(settings: Settings, providers: list[str] | None, gpu: bool, once: bool) -> int:
    """Run the claim loop in this process until interrupted (or, with once, until the queue is empty).

    SIGTERM/SIGINT stop it gracefully: a running job is handed back to the queue.
    """
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    engine = make_engine(settings)
    worker = Worker(settings, engine, providers=providers, gpu=gpu)

    def _stop(signum, _frame):
        worker.shutdown.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"Tuneboard worker {worker.worker_id} serving {', '.join(worker.providers)}", flush=True)
    try:
        worker.run(once=once)
    finally:
        engine.dispose()
    return 0
