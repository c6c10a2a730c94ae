"""The worker that runs inside the web server process (the single-machine default)."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from app.config import Settings
from app.worker.loop import Worker


class EmbeddedWorker:
    """Runs the claim loop in a background thread; stop() asks it to finish and waits.

    A job running at stop() goes back to the queue (local: it resumes from its last checkpoint next time); so does
    an eval run (it resumes after its items already written). Options go to Worker (chat_engine: the app's, so the
    eval lane and the playground share loaded models).
    """

    def __init__(self, settings: Settings, engine: Engine, **options):
        self.settings = settings
        self.engine = engine
        self.worker = Worker(settings, engine, gpu=True, **options)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread."""
        self._thread = threading.Thread(target=self.worker.run, name="tuneboard-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop and wait for it."""
        self.worker.shutdown.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
