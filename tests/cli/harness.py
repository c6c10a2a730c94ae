"""A `tuneboard` application holding only the commands under test (the real one registers them the same way)."""

from __future__ import annotations

import json
from typing import Any

import typer
from typer.testing import CliRunner, Result

from app.cli.check import register


def application() -> typer.Typer:
    """A Typer app with `check` and `prepare` registered."""
    cli = typer.Typer()
    register(cli)

    @cli.callback()
    def root() -> None:
        """Commands are sub-commands (as in `tuneboard`), not the app itself."""

    return cli


def invoke(*args: str) -> Result:
    """Run `tuneboard ARGS` in-process."""
    return CliRunner().invoke(application(), [str(a) for a in args])


def invoke_json(*args: str) -> tuple[int, Any]:
    """Run `tuneboard ARGS --json`: (exit code, parsed output)."""
    result = invoke(*args, "--json")
    return result.exit_code, json.loads(result.stdout)
