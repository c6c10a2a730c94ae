"""Login and logout for a dashboard protected by a password."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from app.web.rendering import render
from app.web.security import end_session, start_session

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
async def login(request: Request, password: str = Form(""), next: str = Form("/")):
    """Check the password (after the throttle's delay, if any) and start a session bound to a new browser id."""
    auth = request.app.state.auth
    async with request.app.state.login_throttle.attempt(request.state.client_key) as attempt:
        # scrypt takes tens of milliseconds: off the event loop.
        attempt.ok = await run_in_threadpool(auth.check_password, password)
    if not attempt.ok:
        return render(
            request, "auth/login.html", {"next": _safe_next(next), "error": "Wrong password."}, status_code=401
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    start_session(request, response)
    return response


@router.post("/logout")
def logout(request: Request):
    """End this session everywhere: the cookie goes, and a copy of it no longer works either."""
    response = RedirectResponse("/login", status_code=303)
    ended = end_session(request, response)
    if ended:
        request.app.state.auth.revoke_session(ended)
    return response
