"""One place that prepares the Hugging Face libraries for offline, quiet use before anything imports them."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import EngineSpin

_lock = threading.Lock()
_ready = False
_spin: str | None = None  # the OpenMP policy written into this process's environment (OpenMP reads it once)
SHORT_SPIN = "10000"  # GOMP_SPINCOUNT: tens of microseconds of spinning, bench/README.md


def set_spin(spin: EngineSpin) -> None:
    """Choose how idle OpenMP threads wait (the engine_spin setting); the first choice of a process stands.

    libgomp's default (~300k spins) burns shared cores: on a busy 2-core box training steps got 8x slower. Sleeping
    at once (PASSIVE) makes every parallel op pay a wake-up, which a decode step of ~600 tiny ops cannot afford. A
    short spin keeps a thread warm between consecutive matmuls and sleeps soon after; decoding uses the second
    thread only while no other process is busy (cpu_share.py). "off": passive (and one decode thread), "on" and
    "auto": the short spin. Only environment variables are set (cheap, no import), which OpenMP reads when torch
    loads: call this before. OpenMP variables the operator set win.
    """
    global _spin
    with _lock:
        if _spin is not None:
            return
        _spin = spin
        if spin == "off":
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        elif "OMP_WAIT_POLICY" not in os.environ:
            os.environ.setdefault("GOMP_SPINCOUNT", SHORT_SPIN)


def prepare(spin: EngineSpin = "auto") -> None:
    """Force offline mode, silence progress bars and set the OpenMP policy (set_spin); cheap after the first call."""
    global _ready
    set_spin(spin)
    if _ready:
        return
    with _lock:
        if _ready:
            return
        # Nothing may ever be fetched from a hub: set these before transformers reads them.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        _ready = True


@contextlib.contextmanager
def quiet():
    """Silence the libraries' deprecation chatter (it is theirs to fix, and tests turn warnings into errors)."""
    with warnings.catch_warnings():
        for category in (FutureWarning, DeprecationWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        yield
