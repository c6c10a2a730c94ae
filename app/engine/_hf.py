"""One place that prepares the Hugging Face libraries for offline, quiet use before anything imports them."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings

_lock = threading.Lock()
_ready = False


def prepare() -> None:
    """Force offline mode and silence progress bars; idempotent and cheap after the first call."""
    global _ready
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
        # How long an idle OpenMP thread spins before sleeping. Spinning burns shared cores: on a busy 2-core box
        # training steps got 8x slower, and chat fell from 37 to 7 tokens/s beside a training job; sleeping at once
        # (PASSIVE) is the safe default. On a dedicated machine a short spin (TUNEBOARD_ENGINE_SPIN=1) makes
        # decoding ~1.5x faster (bench/README.md). Only effective before torch loads.
        if os.environ.get("TUNEBOARD_ENGINE_SPIN") == "1":
            os.environ.setdefault("GOMP_SPINCOUNT", "10000")
        else:
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
