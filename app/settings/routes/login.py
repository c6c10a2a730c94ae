"""Login and logout for a dashboard protected by a password."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from app.web.rendering import render
from app.web.security import SESSION_COOKIE, SESSION_MAX_AGE, session_serializer

router = APIRouter(tags=["auth"], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let another site bounce people through the login.
    if not target or not target.startswith("/") or target.startswith("//") or urlparse(target).netloc:
        return "/"
    return target


@router.get("/login")
def login_page(request: Request, next: str = "/"):
    """The login form."""
    return render(request, "auth/login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
def login(request: Request, password: str = Form(""), next: str = Form("/")):
    """Check the password (rate-limited per client) and set the signed session cookie."""
    auth = request.app.state.auth
    throttle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    if throttle.blocked(client):
        context = {"next": _safe_next(next), "error": "Too many failed attempts. Wait a minute and try again."}
        return render(request, "auth/login.html", context, status_code=429)
    if not auth.check_password(password):
        throttle.failed(client)
        return render(
            request, "auth/login.html", {"next": _safe_next(next), "error": "Wrong password."}, status_code=401
        )
    throttle.succeeded(client)
    response = RedirectResponse(_safe_next(next), status_code=303)
    token = session_serializer(request.app.state.secret_key).dumps({"user": "admin"})
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout():
    """Forget the session."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
