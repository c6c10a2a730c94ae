"""The one module-level application, for `uvicorn app.asgi:app` (or any ASGI server)."""

from __future__ import annotations

import sys
from pathlib import Path

from app.config import Settings
from app.main import create_app


def server_host(argv: list[str]) -> str | None:
    """The interface uvicorn was told to bind (`--host X` / `--host=X`), when it is the program running us.

    The app refuses a network bind without a good password at start; the ASGI protocol does not tell it the
    bound address until the first request, so the command line is read here (requests are checked too).
    """
    if not argv or "uvicorn" not in Path(argv[0]).parts[-2:]:  # .../bin/uvicorn or .../uvicorn/__main__.py
        return None
    for index, arg in enumerate(argv[1:], start=1):
        if arg == "--host" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--host="):
            return arg.partition("=")[2]
    return None


def _settings() -> Settings:
    settings = Settings()
    bound = server_host(sys.argv)
    return settings.model_copy(update={"host": bound}) if bound else settings


app = create_app(_settings())
