"""Chat decoding speed as measured on this machine, per base model: the model list shows it once known.

The chat engine records each reply long enough to time (its tokens after the first, over the time since the first:
the prompt's prefill is not decoding) in DATA_DIR/measured/chat_speed.json; the newest reply of a base model
(tuned models count for their base) replaces the one before. A file rather than a table because the engine knows
no database; several processes may write it, and the last writer wins, which is all a latest measurement needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MIN_TOKENS = 16  # shorter replies are mostly start-up: not a speed worth showing
FILE = Path("measured") / "chat_speed.json"


@dataclass(frozen=True)
class ChatSpeed:
    """One measured reply: decoded tokens per second, and when and where."""

    tokens_per_second: float
    tokens: int
    seconds: float
    measured_at: float  # Unix time
    host: str


class ChatSpeeds:
    """The measured chat speeds kept in one data directory."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / FILE
        self._lock = threading.Lock()

    def record(self, base_model: str, tokens: int, seconds: float) -> None:
        """Keep a reply's speed (tokens decoded after the first, in seconds) when it is long enough to tell."""
        if tokens < MIN_TOKENS or seconds <= 0:
            return
        # Seconds to the microsecond: a tiny model decodes dozens of tokens in a few milliseconds.
        speed = ChatSpeed(round(tokens / seconds, 1), tokens, round(seconds, 6), time.time(), socket.gethostname())
        # A read-only or full data directory: the reply matters, its speed does not.
        with self._lock, contextlib.suppress(OSError):
            known = self._read_raw()
            known[base_model] = asdict(speed)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(known, indent=1))
            partial.replace(self.path)  # a reader sees the old file or the new one, never half of one

    def read(self) -> dict[str, ChatSpeed]:
        """Every base model's latest measured speed."""
        out: dict[str, ChatSpeed] = {}
        for name, value in self._read_raw().items():
            try:
                out[name] = ChatSpeed(**value)
            except TypeError:
                continue  # a line of another shape: not shown
        return out

    def _read_raw(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
