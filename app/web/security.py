"""Authentication and CSRF: one guard every route passes through, and a middleware for headers and cookies."""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import Forbidden, Unauthorized

CSRF_COOKIE = "tb_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_COOKIE = "tb_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_PATHS = ("/healthz", "/login", "/static/", "/favicon.ico")
API_PREFIXES = ("/api/", "/v1/")
SESSION_MAX_AGE = 14 * 24 * 3600

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def is_api_path(path: str) -> bool:
    """Whether the path belongs to the bearer-key APIs (/api, /v1)."""
    return path.startswith(API_PREFIXES) or path in ("/api", "/v1")


class SecurityMiddleware:
    """Adds security headers and makes sure every browser holds a CSRF token cookie (pure ASGI: SSE-safe)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        token = cookies.get(CSRF_COOKIE)
        fresh = not token or len(token) < 20
        if fresh:
            token = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if fresh:
                    cookie = f"{CSRF_COOKIE}={token}; Path=/; SameSite=Lax"
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Answer the 500 here, with the security headers, then let the error propagate to be logged.
            if not started:
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send_with_headers({"type": "http.response.body", "body": b"Internal Server Error"})
            raise


def _cookies(scope: Scope) -> dict[str, str]:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is treated as no cookies
                return {}
            return {k: m.value for k, m in jar.items()}
    return {}


def session_serializer(secret: str) -> URLSafeTimedSerializer:
    """Signs and checks the login session cookie."""
    return URLSafeTimedSerializer(secret, salt="tuneboard-session")


def logged_in(request: Request) -> bool:
    """Whether the request carries a valid signed session cookie."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return False
    try:
        session_serializer(request.app.state.secret_key).loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return False
    return True


class LoginRequired(Exception):
    """Raised by the guard for a page request without a session when a password is set."""


async def guard(request: Request) -> None:
    """Every route's gate: bearer key on /api and /v1; login and CSRF token on the dashboard."""
    path = request.url.path
    if path.startswith(OPEN_PATHS):
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        return
    if is_api_path(path):
        check_api_key(request)
        return
    if request.app.state.auth.password_required() and not logged_in(request):
        raise LoginRequired()
    if request.method not in SAFE_METHODS:
        await check_csrf(request)


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing browser request whose token does not match its cookie."""
    expected = request.cookies.get(CSRF_COOKIE)
    supplied = request.headers.get(CSRF_HEADER)
    if not supplied and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    if not expected or not supplied or not hmac.compare_digest(expected, supplied):
        raise Forbidden(
            "This form has expired or came from another site (CSRF token missing or wrong). "
            "Reload the page and try again.",
            code="csrf_failed",
        )


def check_api_key(request: Request) -> None:
    """Accept `Authorization: Bearer <key>` with a configured or stored key; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
        )
    if not request.app.state.auth.key_is_valid(key.strip()):
        raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")
