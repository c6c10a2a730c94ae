"""Browser and API security: one middleware in front of everything, one guard every route passes through.

The middleware refuses unknown Host names and network requests while no good password is set, believes
forwarded headers only from trusted proxies, adds the security headers, and gives each browser a signed,
HttpOnly id; the CSRF token is derived from that id with the secret key (pages carry it in a <meta> tag and
hidden fields). Logging in binds the session to a fresh id, so a planted cookie or stolen token goes stale.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import Forbidden, Unauthorized
from app.web.forwarding import NetworkPolicy, is_ip, is_loopback

BROWSER_COOKIE = "tb_sid"
SESSION_COOKIE = "tb_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
OPEN_PATHS = ("/healthz", "/login", "/static/", "/favicon.ico")
API_PREFIXES = ("/api/", "/v1/")
SESSION_MAX_AGE = 14 * 24 * 3600
# A browser id and a CSRF token are both 32 random (or HMAC) bytes in URL-safe base64: 43 characters, no padding.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")

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


class AuthChecks(Protocol):
    """What the security layer asks of the settings area's AuthState (the area sits above app/web)."""

    def password_required(self) -> bool: ...
    def network_refusal(self) -> str | None: ...
    def session_fingerprint(self) -> str: ...
    def session_revoked(self, session_id: str) -> bool: ...
    def key_is_valid(self, key: str) -> bool: ...


def is_api_path(path: str) -> bool:
    """Whether the path belongs to the bearer-key APIs (/api, /v1)."""
    return path.startswith(API_PREFIXES) or path in ("/api", "/v1")


# -- the browser id and its CSRF token ------------------------------------------------------------------------
def _browser_signer(secret: str) -> Signer:
    return Signer(secret, salt="tuneboard-browser")


def new_browser_id() -> str:
    """A fresh random browser id."""
    return secrets.token_urlsafe(32)


def read_browser_id(secret: str, cookie: str | None) -> str | None:
    """The id in a browser-id cookie, or None when it is missing, unsigned, forged or malformed."""
    if not cookie or len(cookie) > 200:
        return None
    try:
        value = _browser_signer(secret).unsign(cookie).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    return value if TOKEN_SHAPE.match(value) else None


def csrf_token_for(secret: str, browser_id: str) -> str:
    """The CSRF token of a browser id: only the server (holding the secret key) can make it."""
    digest = hmac.new(secret.encode(), f"csrf:{browser_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _cookie_header(name: str, value: str, secure: bool, max_age: int) -> bytes:
    flags = "; Secure" if secure else ""
    return f"{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{flags}".encode()


def _plain_response(status: int, text: str) -> list[Message]:
    return [
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain; charset=utf-8")]},
        {"type": "http.response.body", "body": text.encode()},
    ]


class SecurityMiddleware:
    """Host check, forwarded headers, the network refusal, security headers and the browser-id cookie
    (pure ASGI, so event streams pass through untouched)."""

    def __init__(self, app: ASGIApp, network: NetworkPolicy, secret_key: str, auth: AuthChecks):
        self.app = app
        self.network = network
        self.secret_key = secret_key
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", []):
            separator = b"; " if name == b"cookie" else b", "
            headers[name] = headers[name] + separator + value if name in headers else value
        state = scope.setdefault("state", {})
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                out = list(message.get("headers", []))
                present = {name.lower() for name, _ in out}
                out.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                if state.get("browser_id") and state["browser_id"] != state.get("browser_id_sent"):
                    # New, or rotated by a login or logout while handling this request.
                    value = _browser_signer(self.secret_key).sign(state["browser_id"]).decode()
                    secure = scope["scheme"] == "https"
                    out.append((b"set-cookie", _cookie_header(BROWSER_COOKIE, value, secure, SESSION_MAX_AGE)))
                message["headers"] = out
            await send(message)

        server = scope.get("server")
        local_address = str(server[0]) if server else None
        if not self.network.host_allowed(headers.get(b"host", b"").decode("latin-1"), local_address):
            # Before any page or cookie: a foreign name means DNS rebinding or a misconfigured proxy.
            for message in _plain_response(
                400,
                "Unknown host name. Tuneboard answers only to the names it is configured for: add this one to "
                "TUNEBOARD_ALLOWED_HOSTS if it is really yours.",
            ):
                await send_with_headers(message)
            return
        state["client_key"] = self.network.apply_forwarded(scope, headers)
        # From the network: arrived on a non-loopback interface, or forwarded by a proxy for someone elsewhere.
        from_network = (local_address is not None and is_ip(local_address) and not is_loopback(local_address)) or (
            b"x-forwarded-for" in headers and not is_loopback(state["client_key"])
        )
        refusal = self.auth.network_refusal() if from_network else None
        if refusal:
            for message in _plain_response(403, f"Tuneboard refuses requests from the network: {refusal}"):
                await send_with_headers(message)
            return

        path = scope.get("path", "")
        known = read_browser_id(
            self.secret_key, cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(BROWSER_COOKIE)
        )
        browser_id = known or new_browser_id()
        state["browser_id"] = browser_id
        state["browser_id_known"] = known is not None
        # API clients and static files get no cookie: a browser's first page hands one out.
        state["browser_id_sent"] = browser_id if known or is_api_path(path) or path.startswith("/static/") else None
        state["csrf_token"] = csrf_token_for(self.secret_key, browser_id)
        state["logged_in"] = False
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Answer the 500 here, with the security headers, then let the error propagate to be logged.
            if not started:
                for message in _plain_response(500, "Internal Server Error"):
                    await send_with_headers(message)
            raise


def rotate_browser_id(request: Request) -> None:
    """Give the browser a new id (and so a new CSRF token) with this response: at login and logout."""
    request.state.browser_id = new_browser_id()
    request.state.csrf_token = csrf_token_for(request.app.state.secret_key, request.state.browser_id)


# -- login sessions -------------------------------------------------------------------------------------------
def session_serializer(secret: str) -> URLSafeTimedSerializer:
    """Signs and checks the login session cookie."""
    return URLSafeTimedSerializer(secret, salt="tuneboard-session")


def _session(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or len(raw) > 1000:
        return None
    try:
        payload = session_serializer(request.app.state.secret_key).loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return None
    return payload if isinstance(payload, dict) else None


def logged_in(request: Request) -> bool:
    """Whether the request carries a live session: signed, for this browser id and the password in force, and
    not logged out."""
    payload = _session(request)
    if payload is None or not request.state.browser_id_known:
        return False
    sid, tag = payload.get("sid"), payload.get("pw")
    auth: AuthChecks = request.app.state.auth
    return (
        isinstance(sid, str)
        and isinstance(tag, str)
        and hmac.compare_digest(sid, request.state.browser_id)
        and hmac.compare_digest(tag, auth.session_fingerprint())
        and not auth.session_revoked(sid)
    )


def start_session(request: Request, response: Response) -> None:
    """Log this browser in: a new browser id (so a planted one is useless) and a session cookie bound to it."""
    rotate_browser_id(request)
    auth: AuthChecks = request.app.state.auth
    payload = {"sid": request.state.browser_id, "pw": auth.session_fingerprint()}
    response.set_cookie(
        SESSION_COOKIE,
        session_serializer(request.app.state.secret_key).dumps(payload),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def end_session(request: Request, response: Response) -> str | None:
    """Log this browser out: drop the cookie and a new browser id; the ended session's id, for revocation."""
    payload = _session(request)
    sid = payload.get("sid") if payload else None
    rotate_browser_id(request)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return sid if isinstance(sid, str) else None


class LoginRequired(Exception):
    """Raised by the guard for a page request without a session when a password is set."""


# -- the guard ------------------------------------------------------------------------------------------------
async def guard(request: Request) -> None:
    """Every route's gate: bearer key on /api and /v1; login, same origin and CSRF token on the dashboard."""
    path = request.url.path
    if path.startswith(OPEN_PATHS):
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        return
    if is_api_path(path):
        check_api_key(request)
        return
    if request.app.state.auth.password_required():
        if not logged_in(request):
            raise LoginRequired()
        request.state.logged_in = True  # the page offers a logout button
    if request.method not in SAFE_METHODS:
        await check_csrf(request)


def _origin_parts(scheme: str, host: str) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(scheme)
    try:
        parts = urlsplit(f"{scheme}://{host}")
        return scheme, (parts.hostname or "").lower(), parts.port or default
    except ValueError:
        return scheme, "", None


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from this site's own pages (or from no browser at all).

    Browsers send Origin (and Sec-Fetch-Site) with every POST; a client that sends neither is not a browser
    page, and still needs the token.
    """
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if origin is None:
        return site is None
    if site is not None and site != "same-origin":
        return False
    try:
        theirs = urlsplit(origin)
        claimed = _origin_parts(theirs.scheme.lower(), theirs.netloc)
    except ValueError:
        return False
    ours = _origin_parts(request.url.scheme, request.headers.get("host", ""))
    return bool(ours[1]) and claimed == ours


async def check_csrf(request: Request) -> None:
    """Refuse a state-changing browser request from another origin or without this browser's token."""
    if not same_origin(request):
        raise Forbidden(
            "This request came from another site (its Origin is not this dashboard), so it was refused. "
            "Behind a TLS proxy, list the proxy in TUNEBOARD_TRUSTED_PROXIES so https is recognised.",
            code="cross_origin",
        )
    supplied = request.headers.get(CSRF_HEADER)
    if not supplied and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        supplied = value if isinstance(value, str) else None
    valid = (
        request.state.browser_id_known
        and supplied is not None
        and TOKEN_SHAPE.match(supplied) is not None
        and hmac.compare_digest(request.state.csrf_token, supplied)
    )
    if not valid:
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
