"""Maps domain errors to HTTP: OpenAI's error shape on /v1, JSON on /api, pages and flash fragments elsewhere."""

from __future__ import annotations

import errno
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized, Unavailable, Upstream
from app.web.rendering import is_htmx
from app.web.security import LoginRequired, check_api_key, is_api_path

log = logging.getLogger("tuneboard")

OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, message: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    """An error body exactly as OpenAI's API sends it."""
    body = {
        "error": {
            "message": message,
            "type": OPENAI_ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }
    return JSONResponse(body, status_code=status)


def error_response(
    request: Request,
    status: int,
    message: str,
    code: str | None = None,
    param: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Response:
    """The error in the representation this request expects."""
    path = request.url.path
    if path.startswith("/v1"):
        return openai_error(status, message, code, param)
    if path.startswith("/api"):
        body: dict[str, Any] = {"detail": message, "code": code}
        if param:
            body["param"] = param
        if details is not None:
            body["details"] = details
        return JSONResponse(body, status_code=status)
    templates = request.app.state.templates
    context = {"status": status, "message": message, "code": code}
    if is_htmx(request):
        # Show the message in the page's flash area instead of replacing whatever the request targeted,
        # so a refused save never wipes the editor the person is typing in.
        response = templates.TemplateResponse(request, "_flash.html", context, status_code=status)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


# The HTTP status of each domain error; a subclass takes its nearest listed ancestor's.
STATUS_OF_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 400,
    Forbidden: 403,
    Unauthorized: 401,
    Upstream: 502,
    Unavailable: 503,
    DomainError: 400,
}


def status_of(error: DomainError) -> int:
    """The HTTP status for a domain error."""
    if isinstance(error, Upstream) and error.retryable:
        return STATUS_OF_ERROR[Unavailable]  # a provider's passing failure (rate limit, outage): try again later
    for cls in type(error).__mro__:
        if cls in STATUS_OF_ERROR:
            return STATUS_OF_ERROR[cls]
    return 400


def install_error_handlers(app: FastAPI) -> None:
    """Register the one mapping from errors to responses."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return error_response(request, status_of(exc), exc.message, exc.code, exc.param, exc.details)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        if is_htmx(request):
            return JSONResponse({"detail": "login required"}, status_code=401, headers={"HX-Redirect": "/login"})
        if request.method == "GET":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return error_response(request, 401, "Please log in first.", "login_required")

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid value')}" if where else first.get("msg", "invalid request")
        status = 400 if request.url.path.startswith("/v1") else 422
        return error_response(
            request,
            status,
            message,
            "invalid_request",
            where or None,
            details=[{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors],
        )

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError):
        if exc.errno == errno.ENOSPC:
            log.error("disk full while handling %s %s", request.method, request.url.path)
            return error_response(
                request,
                507,
                "The disk is full: nothing was saved. Free some space on the "
                "server (its data directory) and try again.",
                "disk_full",
            )
        raise exc

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError):
        text = str(exc.orig if exc.orig is not None else exc).lower()
        if "locked" in text or "busy" in text:
            # The transaction was rolled back whole: the person can simply try again.
            return error_response(
                request,
                503,
                "The database is busy (another process holds a write lock); "
                "nothing was changed. Try again in a moment.",
                "database_busy",
            )
        raise exc

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code in (404, 405) and is_api_path(request.url.path):
            # Unmatched paths skip the route guard; an API client without a valid key learns that first, as
            # OpenAI answers 401 before 404.
            try:
                check_api_key(request)
            except Unauthorized as denied:
                return error_response(request, 401, denied.message, denied.code)
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"Nothing at {request.url.path}."
        return error_response(request, exc.status_code, message, "not_found" if exc.status_code == 404 else None)
