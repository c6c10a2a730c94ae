"""Run the real `tuneboard` executable (the venv's console script) as a subprocess, as people and CI do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TUNEBOARD = Path(sys.executable).parent / "tuneboard"


def tuneboard(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """`tuneboard ARGS…` with this checkout on PYTHONPATH, a wide terminal, no inherited API settings; `stdin` is
    what is typed (none: not a terminal, nothing to read)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TUNEBOARD_", "OPENAI_"))}
    base.update(PYTHONPATH=str(ROOT), COLUMNS="200", NO_COLOR="1")
    base.update(env or {})
    return subprocess.run(
        [str(TUNEBOARD), *args],
        env=base,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok_json(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
    """Run with --json, require exit status 0, return the parsed output."""
    result = tuneboard(*args, "--json", env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)
