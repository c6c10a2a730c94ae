"""Where the API commands connect (a Tuneboard server, or OpenAI with --openai) and how their failures read."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from openai import OpenAI

DEFAULT_URL = "http://127.0.0.1:8000/v1"
MAINTENANCE_DISABLED = "maintenance_disabled"
MAINTENANCE_HINT = (
    "Turn maintenance on in Settings (/settings#maintenance), with PUT /api/settings/maintenance "
    '{"enabled": true}, or by starting the server with TUNEBOARD_MAINTENANCE=1, then run the command again.'
)
stderr = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Connection:
    """The server the API commands talk to and the key they send."""

    base_url: str | None
    api_key: str | None
    use_openai: bool

    @classmethod
    def from_options(cls, ctx: typer.Context, base_url: str, api_key: str | None, use_openai: bool) -> Connection:
        """With --openai, TUNEBOARD_URL/TUNEBOARD_API_KEY from the environment are not OpenAI's: only flags count."""
        if not use_openai:
            return cls(base_url, api_key, False)
        typed_url, typed_key = (_typed(ctx, name) for name in ("base_url", "api_key"))
        return cls(base_url if typed_url else None, api_key if typed_key else os.environ.get("OPENAI_API_KEY"), True)

    @property
    def where(self) -> str:
        """The server's name in messages."""
        return self.base_url or "OpenAI"


def _typed(ctx: typer.Context, name: str) -> bool:
    """Whether the option was given on the command line (not from its environment variable or default)."""
    # By name: typer carries its own copy of click, whose ParameterSource is not click's.
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` on stderr and return the Exit to raise."""
    stderr.print(message, markup=False, soft_wrap=True)  # one line per message, whatever reads the log
    return typer.Exit(code)


@contextmanager
def api(ctx: typer.Context) -> Iterator[OpenAI]:
    """An SDK client for the chosen server; API errors end the command with a plain message and exit status 1."""
    import openai

    conn = ctx.find_object(Connection) or Connection(DEFAULT_URL, None, False)
    if not conn.api_key:
        source = "OPENAI_API_KEY" if conn.use_openai else "TUNEBOARD_API_KEY"
        raise fail(f"No API key: set {source} or pass --api-key (before the command, e.g. tuneboard --api-key KEY …).")
    try:
        with openai.OpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=2) as client:
            yield client
    except openai.APIStatusError as exc:
        raise fail(describe(exc, conn)) from None
    except openai.APIConnectionError:
        hint = "" if conn.use_openai else " Is `tuneboard serve` running there? (--base-url / TUNEBOARD_URL)"
        raise fail(f"Cannot reach {conn.where}.{hint}") from None


def describe(exc: object, conn: Connection) -> str:
    """An SDK error as one plain sentence or two: the server's message, and what to do for the common ones."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    detail = body.get("error", body) if isinstance(body, dict) else None
    message = (detail.get("message") or detail.get("detail")) if isinstance(detail, dict) else None
    code = detail.get("code") if isinstance(detail, dict) else None
    text = str(message or getattr(exc, "message", exc))
    if code == MAINTENANCE_DISABLED:
        if "maintenance" not in text.lower() or "TUNEBOARD_MAINTENANCE" not in text:
            text = f"{text} {MAINTENANCE_HINT}"
        return f"Refused: {text}"
    if status == 401:
        return f"{conn.where} refused the API key: {text}"
    return f"Error ({status}): {text}"


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive command on a terminal; elsewhere --yes is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"{question} Not on a terminal, so nothing was done: pass --yes to confirm.", code=2)
    if not typer.confirm(question, default=False):
        raise fail("Nothing was done.", code=1)
