"""Rendering helpers shared by routers: one URL, full page or `_partial` fragment when HX-Request is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlmodel import Session

from app.web.security import CSRF_FIELD

# Inside the package, so an installed wheel serves pages too.
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parents[1] / "static"


def make_templates() -> Jinja2Templates:
    """The Jinja environment: autoescaping on, a csrf_field() helper and a few filters."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.globals["csrf_field"] = _csrf_field
    env.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int | float) else n
    env.filters["plural"] = plural
    return templates


def plural(count: int | float, noun: str, nouns: str | None = None) -> str:
    """`count` with its noun in the right number: "1 epoch", "3 epochs", "1,200 examples"."""
    word = noun if count == 1 else (nouns or noun + "s")
    return f"{count:,} {word}"


def _csrf_field(request: Request) -> Markup:
    token = request.state.csrf_token
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(token)}">')


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (so a fragment, not a whole page, is wanted)."""
    return request.headers.get("hx-request") == "true"


# Read and cleared by app/static/app.js, which shows it in #flash: a cookie, so the message survives a redirect.
FLASH_COOKIE = "tb_flash"


def flash(request: Request, response: Response, message: str) -> Response:
    """Say what was done on the page the browser shows next (after a redirect, a fragment or a whole page)."""
    response.set_cookie(
        FLASH_COOKIE,
        quote(message, safe=""),  # only %XX and letters: nothing for the cookie syntax to quote
        max_age=60,
        path="/",
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def redirect(request: Request, url: str, message: str | None = None) -> Response:
    """Send the browser to `url`: HX-Redirect for htmx, 303 for a plain form; `message` is flashed there."""
    response: Response
    if is_htmx(request):
        response = Response(status_code=200, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    return flash(request, response, message) if message else response


def render(request: Request, page: str, context: dict[str, Any], partial: str | None = None, status_code: int = 200):
    """Render `page`, or only `partial` when the request comes from htmx (and isn't a boosted navigation)."""
    templates: Jinja2Templates = request.app.state.templates
    name = partial if partial and is_htmx(request) and request.headers.get("hx-boosted") != "true" else page
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request (committed by the service that writes)."""
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
