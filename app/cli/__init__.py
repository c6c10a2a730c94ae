"""The `tuneboard` command: serve, migrate, worker."""

from __future__ import annotations

import argparse
import sys

from app.config import Settings


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one sub-command."""
    parser = argparse.ArgumentParser(prog="tuneboard", description="Self-hosted fine-tuning studio.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve the dashboard and APIs")
    serve.add_argument("--host", help="interface to bind (default from HOST / TUNEBOARD_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from PORT / TUNEBOARD_PORT, else 8000)")
    serve.add_argument("--no-worker", action="store_true", help="do not run the embedded job worker")

    sub.add_parser("migrate", help="bring the database schema up to date")

    worker = sub.add_parser("worker", help="run a job worker process against the same database")
    worker.add_argument("--providers", default="", help="comma-separated providers this worker serves (default all)")
    worker.add_argument(
        "--gpu",
        action="store_true",
        help="this host has a GPU: take local training jobs at once (a worker without --gpu trains on CPU and "
        "takes a local job only after it has waited heartbeat_timeout_seconds in the queue, so GPU hosts get it first)",
    )
    worker.add_argument("--once", action="store_true", help="run until the queue is empty, then exit")

    args = parser.parse_args(argv)
    overrides = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "no_worker", False):
        overrides["embedded_worker"] = False
    settings = Settings(**overrides)

    if args.command == "migrate":
        from app.tables.migrate import upgrade

        upgrade(settings)
        print(f"Database is up to date: {_safe_url(settings)}")
        return 0
    if args.command == "serve":
        return _serve(settings)
    if args.command == "worker":
        from app.worker.process import run_worker_process

        providers = [p.strip() for p in args.providers.split(",") if p.strip()]
        return run_worker_process(settings, providers=providers or None, gpu=args.gpu, once=args.once)
    return 2


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


if __name__ == "__main__":
    sys.exit(main())
