"""Liveness: answers 200 when the database is reachable."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.web.rendering import SessionDep

router = APIRouter(tags=["health"])


UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The database cannot be reached.", "content": {"application/json": {}}}
}


@router.get("/healthz", responses=UNAVAILABLE)
def healthz(session: SessionDep):
    """200 and {"status": "ok"} when a trivial query succeeds; 503 otherwise."""
    try:
        session.scalar(text("SELECT 1"))
    except Exception as exc:  # the point of this endpoint is to report, not raise
        return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, status_code=503)
    return {"status": "ok"}
