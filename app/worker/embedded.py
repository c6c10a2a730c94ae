"""The worker that runs inside the web server process (the single-machine default)."""

from __future__ import annotations

import threading

from sqlalchemy.engine import Engine

from app.config import Settings


class EmbeddedWorker:
    """Runs the claim loop in a background thread; stop() asks it to finish and waits."""

    def __init__(self, settings: Settings, engine: Engine):
        self.settings = settings
        self.engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop thread."""
        self._thread = threading.Thread(target=self._run, name="tuneboard-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Filled in by the jobs issue: claim queued jobs, heartbeat, recover stale ones.
        self._stop.wait()

    def stop(self) -> None:
        """Ask the loop to stop and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
