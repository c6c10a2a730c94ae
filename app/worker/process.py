"""`tuneboard worker`: a standalone worker process against the same database."""

from __future__ import annotations

from app.config import Settings


def run_worker_process(settings: Settings, providers: list[str] | None, gpu: bool, once: bool) -> int:
    """Run the claim loop in this process until interrupted (or, with once, until the queue is empty)."""
    raise SystemExit("The standalone worker arrives with the jobs issue (#5).")
