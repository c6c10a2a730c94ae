"""Enumerates the app's routes so the security tests cover new routes without being edited."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.routing import APIRoute

from app.web.security import OPEN_PATHS, is_api_path

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
# Thirty digits: more than SQLite's INTEGER (or PostgreSQL's bigint) can hold.
HUGE = "1" + "0" * 29
_PARAM = re.compile(r"\{[^}]+\}")
# "1" matches both int and str convertors, so the route under test is the one matched.
DUMMY = "1"


@dataclass(frozen=True)
class RouteCase:
    """One method of one route, with its path parameters replaced by a dummy value."""

    method: str
    template: str
    url: str
    api_route: bool  # a FastAPI route (runs the app-wide guard), not a mount or a built-in docs route

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _route_entries(app):
    """(route, path) for every route, FastAPI's lazily included routers flattened."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        return [(r, getattr(r, "path", None)) for r in app.routes]
    return [(ctx.original_route, ctx.path) for ctx in iter_route_contexts(app.routes)]


def all_cases(app) -> list[RouteCase]:
    """Every (method, route) pair of the app; mounts (static files) are left out."""
    cases = []
    for route, path in _route_entries(app):
        methods = getattr(route, "methods", None)
        if not path or not methods:
            continue
        url = _PARAM.sub(DUMMY, path)
        for method in sorted(methods - {"HEAD"}):
            cases.append(RouteCase(method, path, url, isinstance(route, APIRoute)))
    return cases


def dashboard_state_changing(app) -> list[RouteCase]:
    """Every POST/PUT/PATCH/DELETE outside /api and /v1."""
    return [c for c in all_cases(app) if c.method in STATE_CHANGING and not is_api_path(c.url)]


def bearer_routes(app) -> list[RouteCase]:
    """Every route of /api and /v1, whatever its method."""
    return [c for c in all_cases(app) if is_api_path(c.url)]


def dashboard_pages(app) -> list[RouteCase]:
    """Every GET outside /api and /v1 that is not open to everyone (login, health, static)."""
    return [
        c for c in all_cases(app) if c.method == "GET" and not is_api_path(c.url) and not c.url.startswith(OPEN_PATHS)
    ]


def _int_fields(dependant):
    """(where, name) of every int path and query parameter of a route, its dependencies' included."""
    for where, fields in (("path", dependant.path_params), ("query", dependant.query_params)):
        for field in fields:
            if field.field_info.annotation in (int, int | None):
                yield where, field.name
    for sub in dependant.dependencies:
        yield from _int_fields(sub)


def huge_int_cases(app) -> list[tuple[RouteCase, str]]:
    """Every route with an int path or query parameter, once per such parameter set to HUGE: (case, parameter)."""
    cases = []
    for route, path in _route_entries(app):
        if not isinstance(route, APIRoute):
            continue
        for where, name in _int_fields(route.dependant):
            if where == "path":
                url = _PARAM.sub(DUMMY, path.replace("{" + name + "}", HUGE))
            else:
                url = f"{_PARAM.sub(DUMMY, path)}?{name}={HUGE}"
            for method in sorted(route.methods - {"HEAD"}):
                cases.append((RouteCase(method, path, url, True), name))
    return cases
