"""The app factory: settings, database engine, routers, static files, security and error mapping."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app.basemodels.downloads import ModelDownloads
from app.config import Settings
from app.datasets.validation.report import ReportCache
from app.engine.inference import ChatEngine
from app.jobs.event_notify import EventNotifier
from app.jobs.monitoring import EventFeed
from app.openai_api.files import recover_interrupted_uploads
from app.playground.rejected import RejectedAnswers
from app.playground.warm import Preloader
from app.settings.auth import AuthState, ensure_api_key
from app.settings.maintenance import apply_configured_maintenance
from app.settings.store import encrypt_clear_secrets
from app.settings.throttle import LoginThrottle
from app.tables.db import make_engine, make_private_dir, session_scope
from app.tables.settings_store import load_secret_key
from app.web.forwarding import NetworkPolicy
from app.web.http_errors import install_error_handlers
from app.web.rendering import STATIC, make_templates
from app.web.security import SecurityMiddleware, guard
from app.web.streamed_upload import UPLOAD_SLACK_BYTES, BodyLimits
from app.worker.embedded import EmbeddedWorker

# Every module that serves routes, one per line; order matters only where paths overlap.
ROUTER_MODULES = [
    "app.web.health",
    "app.web.api_docs",
    "app.settings.routes.login",
    "app.home.routes.pages",
    "app.datasets.routes.pages",
    "app.datasets.routes.examples",
    "app.datasets.routes.api",
    "app.datasets.routes.reports",
    "app.datasets.routes.fixes",
    "app.datasets.routes.fixes_api",
    "app.jobs.routes.pages",
    "app.jobs.routes.api",
    "app.jobs.routes.stream",
    "app.playground.routes.pages",
    "app.playground.routes.preferences",
    "app.playground.routes.rejected",
    "app.evals.routes.pages",
    "app.basemodels.routes.pages",  # before jobs' /models/{model_id:path}/delete, which /models/base/x/delete matches
    "app.basemodels.routes.api",
    "app.jobs.routes.models",
    "app.evals.routes.job_panel",
    "app.migrate.routes.pages",
    "app.settings.routes.pages",
    "app.settings.routes.api",
    "app.openai_api.routes.files",
    "app.openai_api.routes.jobs",
    "app.openai_api.routes.models",
    "app.openai_api.routes.chat",
    "app.evals.routes.api",
    "app.evals.routes.v1",
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a Tuneboard application. The database must already be migrated (`tuneboard migrate`)."""
    settings = settings or Settings()
    make_private_dir(settings.data_dir)
    engine = make_engine(settings)
    notifier = EventNotifier(engine)
    chat_engine = ChatEngine(settings)  # cheap: models load with the first chat, and close() frees them
    secret_key = load_secret_key(settings)
    auth = AuthState(settings, engine, secret_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Here, not only in the CLI: `uvicorn app.asgi:app --host 0.0.0.0` starts the app the same way.
        refusal = None if settings.binds_loopback_only else auth.network_refusal()
        if refusal:
            raise RuntimeError(f"Refusing to serve on {settings.host}: {refusal}")
        with session_scope(engine) as session:
            encrypt_clear_secrets(session, secret_key)
        new_key = ensure_api_key(settings, engine)
        # Uploads a killed server left half-done end as `error` (their half-made datasets removed).
        recover_interrupted_uploads(settings, engine)
        if new_key:
            # Printed once, never logged again: only its hash is stored.
            print(f"\nTuneboard generated an API key for /api and /v1 (shown only now):\n  {new_key}\n", flush=True)
        apply_configured_maintenance(settings, engine)  # TUNEBOARD_MAINTENANCE, when given, wins at each start
        worker = None
        if settings.embedded_worker:
            worker = EmbeddedWorker(settings, engine, chat_engine=chat_engine)
            worker.start()
        app.state.worker = worker
        # The server holds the chat engine, so the server (not the worker) warms a newly tuned model.
        preloader = Preloader(settings, engine, chat_engine).start() if settings.preload_tuned_models else None
        app.state.preloader = preloader
        try:
            yield
        finally:
            if preloader is not None:
                preloader.stop()
            if worker is not None:
                worker.stop()
            app.state.rejected_answers.stop()
            notifier.stop()
            chat_engine.close()
            app.state.model_downloads.close()
            engine.dispose()

    app = FastAPI(
        title="Tuneboard",
        summary="Self-hosted fine-tuning studio: datasets, validation, jobs, playground, OpenAI-compatible API.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(guard)],
        # The built-in docs routes would bypass the guard and load Swagger from a CDN: app/web/api_docs.py
        # serves them instead, vendored and behind the login.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.event_feed = EventFeed(engine, notifier)
    app.state.chat_engine = chat_engine
    app.state.rejected_answers = RejectedAnswers(settings, engine, chat_engine)  # "make rejected answers" runs
    app.state.templates = make_templates()
    app.state.secret_key = secret_key
    app.state.auth = auth
    app.state.login_throttle = LoginThrottle(
        settings.login_attempts_per_minute, settings.login_global_attempts_per_minute, settings.login_max_delay_seconds
    )
    app.state.report_cache = ReportCache()
    app.state.model_downloads = ModelDownloads(settings)  # Hugging Face downloads running in the background
    app.add_middleware(
        SecurityMiddleware, network=NetworkPolicy.from_settings(settings), secret_key=secret_key, auth=auth
    )
    app.add_middleware(
        BodyLimits,
        idle_timeout=settings.upload_idle_timeout_seconds,
        max_bytes=settings.max_upload_bytes + UPLOAD_SLACK_BYTES,
    )
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)
    install_error_handlers(app)
    return app
