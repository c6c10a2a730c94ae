"""The app factory: settings, database engine, routers, static files, security and error mapping."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from app.datasets.validation.report import ReportCache
from app.jobs import event_notify
from app.openai_api.files import recover_interrupted_uploads
from app.settings.auth import AuthState, LoginThrottle, ensure_api_key, load_secret_key
from app.tables.db import make_engine
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
    "app.jobs.routes.pages",
    "app.jobs.routes.api",
    "app.jobs.routes.stream",
    "app.playground.routes.pages",
    "app.jobs.routes.models",
    "app.settings.routes.pages",
    "app.openai_api.routes.files",
    "app.openai_api.routes.jobs",
    "app.openai_api.routes.models",
    "app.openai_api.routes.chat",
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a Tuneboard application. The database must already be migrated (`tuneboard migrate`)."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        new_key = ensure_api_key(settings, engine)
        # Uploads a killed server left half-done end as `error` (their half-made datasets removed).
        recover_interrupted_uploads(settings, engine)
        if new_key:
            # Printed once, never logged again: only its hash is stored.
            print(f"\nTuneboard generated an API key for /api and /v1 (shown only now):\n  {new_key}\n", flush=True)
        worker = None
        if settings.embedded_worker:
            worker = EmbeddedWorker(settings, engine)
            worker.start()
        app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            event_notify.stop_listeners()
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
    app.state.templates = make_templates()
    app.state.secret_key = load_secret_key(settings)
    app.state.auth = AuthState(settings, engine)
    app.state.login_throttle = LoginThrottle(settings.login_attempts_per_minute)
    app.state.report_cache = ReportCache()
    app.add_middleware(SecurityMiddleware)
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
