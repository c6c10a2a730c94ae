"""`tuneboard serve`, `migrate` and `worker`: the commands that run Tuneboard itself on this machine."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from app.config import Settings


def register(cli: typer.Typer) -> None:
    """Add serve, migrate and worker to the `tuneboard` command."""
    cli.command(rich_help_panel="Run Tuneboard")(serve)
    cli.command(rich_help_panel="Run Tuneboard")(migrate)
    cli.command(rich_help_panel="Run Tuneboard")(worker)


def serve(
    host: Annotated[
        str | None,
        typer.Option(
            help="Interface to bind (default from HOST / TUNEBOARD_HOST, else 127.0.0.1).", show_default=False
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default from PORT / TUNEBOARD_PORT, else 8000).", show_default=False)
    ] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not run the embedded job worker.")] = False,
) -> None:
    """Migrate the database, then serve the dashboard, /api and /v1.

    On a network interface (anything but loopback) Tuneboard needs a dashboard password: from TUNEBOARD_PASSWORD,
    one stored earlier, or one typed here on first start.
    """
    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if no_worker:
        overrides["embedded_worker"] = False
    raise typer.Exit(_serve(Settings(**overrides)))


def migrate() -> None:
    """Bring the database schema up to date (serve does this too on every start)."""
    from app.tables.migrate import upgrade

    settings = Settings()
    upgrade(settings)
    print(f"Database is up to date: {_safe_url(settings)}")


def worker(
    providers: Annotated[
        str, typer.Option(help="Comma-separated providers this worker serves (default all).", show_default=False)
    ] = "",
    gpu: Annotated[
        bool,
        typer.Option(
            "--gpu",
            help="This host has GPUs: take local training jobs at once and train on every visible GPU (data-parallel "
            "when there are several; --gpus picks some). A worker without --gpu trains on CPU and takes a local job "
            "only after it has waited heartbeat_timeout_seconds in the queue, so GPU hosts get it first.",
        ),
    ] = False,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus",
            help="With --gpu (implied): train on these GPUs only, by index (0,2); default every visible one "
            "(TUNEBOARD_WORKER_GPUS). With more than one, each job trains data-parallel, one process per GPU.",
            show_default=False,
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Training processes of a job on the CPU, data-parallel over gloo (TUNEBOARD_TRAIN_PROCESSES; "
            "default 1).",
            show_default=False,
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run until the queue is empty, then exit.")] = False,
) -> None:
    """Run a job worker process against the same database as the server."""
    from app.worker.process import run_worker_process

    chosen = [p.strip() for p in providers.split(",") if p.strip()]
    overrides: dict[str, Any] = {}
    if gpus:
        overrides["worker_gpus"], gpu = gpus, True
    if processes:
        overrides["train_processes"] = processes
    raise typer.Exit(run_worker_process(Settings(**overrides), providers=chosen or None, gpu=gpu, once=once))


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def _serve(settings: Settings) -> int:
    if not settings.binds_loopback_only:
        from app.settings.auth import AuthState
        from app.tables.db import make_engine
        from app.tables.migrate import upgrade
        from app.tables.settings_store import load_secret_key

        upgrade(settings)
        engine = make_engine(settings)
        secret_key = load_secret_key(settings)
        if (
            not settings.password
            and sys.stdin.isatty()
            and not AuthState(settings, engine, secret_key).password_required()
        ):
            _ask_for_password(engine)
        refusal = AuthState(settings, engine, secret_key).network_refusal()
        if refusal:
            print(f"Refusing to serve on {settings.host}: {refusal}", file=sys.stderr)
            return 2
    import uvicorn

    from app.main import create_app
    from app.tables.migrate import upgrade

    upgrade(settings)
    app = create_app(settings)
    print(f"Tuneboard is serving at http://{settings.host}:{settings.port}", flush=True)
    # The app itself believes X-Forwarded-* from TUNEBOARD_TRUSTED_PROXIES only; uvicorn's own handling would trust
    # any local process (127.0.0.1) to name the client, which the login throttle must not.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    return 0


def _ask_for_password(engine) -> None:
    """First run on a network interface: let the person at the terminal choose the dashboard password."""
    import getpass

    from app.settings.auth import MIN_PASSWORD_LENGTH, store_password

    print("Tuneboard will listen on the network, so the dashboard needs a password.")
    first = getpass.getpass(f"Choose a password ({MIN_PASSWORD_LENGTH}+ characters): ")
    if first and first == getpass.getpass("Repeat it: "):
        try:
            store_password(engine, first)
        except ValueError as exc:
            print(exc, file=sys.stderr)
    else:
        print("The passwords did not match.", file=sys.stderr)
