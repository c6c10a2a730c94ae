"""The home page and the one-click sample dataset."""

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from app.home import summary as home
from app.web.rendering import SessionDep, render

router = APIRouter(tags=["pages"])


@router.get("/", include_in_schema=False)
def home_page(request: Request, session: SessionDep):
    """Counts, recent jobs and the getting-started path."""
    return render(request, "home/index.html", {"view": home.home_view(session)})


@router.post("/sample-dataset", include_in_schema=False)
def import_sample(session: SessionDep):
    """Import the bundled sample dataset and open it."""
    dataset = home.import_sample(session)
    return RedirectResponse(f"/datasets/{dataset.id}", status_code=303)
