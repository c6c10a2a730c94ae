"""Entry point of a training process: `python -m app.engine.train_main SPEC.json` (protocol in protocol.py)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from app.engine import protocol as p
from app.engine.train import run_training

GRACE_SECONDS = 4.0  # SIGTERM must end the process within 5 s even if a step is slow


def main(argv: list[str] | None = None) -> int:
    """Run one training job and return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    emit = p.stdout_emitter()
    if len(argv) != 1:
        emit(p.error_line(p.ERROR_INVALID_SPEC, "Usage: python -m app.engine.train_main SPEC.json"))
        return p.EXIT_FAILED
    stop = threading.Event()

    def on_term(signum, frame):
        stop.set()
        # The loop checks between rows; this timer is the backstop if one forward pass runs long.
        timer = threading.Timer(GRACE_SECONDS, lambda: os._exit(p.EXIT_CANCELLED))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_term)
    try:
        spec = p.TrainSpec.read(Path(argv[0]))
    except (OSError, ValueError, TypeError) as exc:
        emit(p.error_line(p.ERROR_INVALID_SPEC, f"Cannot read the job spec {argv[0]}: {exc}"))
        return p.EXIT_FAILED
    status = run_training(spec, emit, stop.is_set)
    code = p.EXIT_CANCELLED if status == "cancelled" else p.EXIT_OK if status == "succeeded" else p.EXIT_FAILED
    if int(os.environ.get("WORLD_SIZE") or 1) > 1:
        # A rank has written and flushed all it writes: skip the interpreter's teardown of torch and its process
        # group (seconds on a busy machine), so that every rank of a cancelled job ends as promptly as one process.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
