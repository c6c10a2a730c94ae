"""The home page."""

from fastapi import APIRouter, Request

from app.web import render

router = APIRouter(tags=["pages"])


@router.get("/", include_in_schema=False)
def home(request: Request):
    """Counts, recent jobs and the getting-started path."""
    return render(request, "home/index.html", {})
