"""Placeholder for `tuneboard check` and `tuneboard prepare` (built on their own branch; this file is replaced)."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    """Add check and prepare to the `tuneboard` command (none yet)."""
