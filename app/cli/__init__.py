"""The `tuneboard` command: run the server and its workers, check data, and drive any OpenAI-style API."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli import check, server
from app.cli.connection import DEFAULT_URL, Connection
from app.cli.files import files
from app.cli.jobs import jobs
from app.cli.models import chat, models

cli = typer.Typer(
    name="tuneboard",
    help=(
        "Tuneboard, a self-hosted fine-tuning studio, from the terminal.\n\n"
        "`serve`, `migrate` and `worker` run Tuneboard on this machine. `files`, `jobs`, `models` and `chat` speak "
        "the OpenAI API, so they drive a Tuneboard server (TUNEBOARD_URL, TUNEBOARD_API_KEY) or, with --openai, "
        "OpenAI itself (OPENAI_API_KEY). Connection options go before the command: "
        "`tuneboard --base-url http://host:8000/v1 jobs list`.\n\n"
        "Every API command has --json for scripts; commands that delete or cancel ask first on a terminal and "
        "take --yes in scripts."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@cli.callback()
def connect(
    ctx: typer.Context,
    base_url: Annotated[
        str, typer.Option(envvar="TUNEBOARD_URL", help="The API to talk to: a Tuneboard server's /v1.")
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="TUNEBOARD_API_KEY",
            help="API key sent as a bearer token (Tuneboard prints one on first start; more on its Settings page).",
            show_default=False,
        ),
    ] = None,
    use_openai: Annotated[
        bool,
        typer.Option(
            "--openai",
            help="Talk to OpenAI instead, with OPENAI_API_KEY (TUNEBOARD_URL/TUNEBOARD_API_KEY are then ignored; "
            "--base-url and --api-key still apply).",
        ),
    ] = False,
) -> None:
    """Where the API commands connect."""
    ctx.obj = Connection.from_options(ctx, base_url, api_key, use_openai)


server.register(cli)
check.register(cli)
cli.add_typer(files, rich_help_panel="Drive the API")
cli.add_typer(jobs, rich_help_panel="Drive the API")
cli.add_typer(models, rich_help_panel="Drive the API")
cli.command(rich_help_panel="Drive the API")(chat)


def main(argv: list[str] | None = None) -> int:
    """Run the `tuneboard` command line (argv defaults to sys.argv[1:]); return its exit status."""
    command = typer.main.get_command(cli)
    try:
        command.main(args=argv, prog_name="tuneboard", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
