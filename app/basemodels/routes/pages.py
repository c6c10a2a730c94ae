"""The base models page (/models/base) and the Add a model page (/models/add) with its three forms."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request

from app.basemodels import service
from app.basemodels.downloads import ModelDownloads
from app.basemodels.registry import delete_added
from app.web.rendering import SessionDep, redirect, render

router = APIRouter(tags=["models"])
OptionalText = Annotated[str, Form()]
Batch = Annotated[int | None, Query(ge=1, le=256, description="Batch size the memory fit is judged at.")]
Sequence = Annotated[int | None, Query(ge=16, le=131072, description="Tokens per example for the memory fit.")]


def _downloads(request: Request) -> ModelDownloads:
    downloads: ModelDownloads = request.app.state.model_downloads
    return downloads


@router.get("/models/base", include_in_schema=False)
def base_models_page(
    request: Request, session: SessionDep, batch: Batch = None, sequence: Sequence = None, added: str = ""
):
    """Every base model with its facts, memory fit at the chosen batch and sequence length, and measured speed."""
    settings = request.app.state.settings
    batch = batch or settings.fit_batch_size
    sequence = sequence or settings.fit_sequence_length
    ctx = {
        "rows": service.base_model_rows(settings, batch, sequence, session=session),
        "batch": batch,
        "sequence": sequence,
        "added": added,
        "downloads": [d for d in _downloads(request).list() if not d.is_terminal],
    }
    return render(request, "basemodels/index.html", ctx)


@router.get("/models/add", include_in_schema=False)
def add_page(request: Request, download: str = ""):
    """The three ways to add a model; `download` names a download to follow."""
    settings = request.app.state.settings
    current = next((d for d in _downloads(request).list() if d.name == download), None)
    ctx = {"download": current, "offline": settings.hf_hub_offline, "endpoint": settings.hf_endpoint}
    return render(request, "basemodels/add.html", ctx)


@router.post("/models/add/hub", include_in_schema=False)
def add_from_hub(
    request: Request,
    repo: OptionalText,
    revision: OptionalText = "main",
    token: OptionalText = "",
    name: OptionalText = "",
):
    """Start a download and follow it on the add page."""
    settings = request.app.state.settings
    download = service.add_from_hub(settings, _downloads(request), repo, revision, token, name)
    return redirect(request, f"/models/add?download={quote(download.name, safe='')}#hub")


@router.post("/models/add/directory", include_in_schema=False)
def add_from_directory(request: Request, path: OptionalText, name: OptionalText = ""):
    """Register a local directory, then show it in the list."""
    manifest = service.add_from_directory(request.app.state.settings, path, name)
    return redirect(request, f"/models/base?added={quote(manifest.name, safe='')}")


@router.post("/models/add/gguf", include_in_schema=False)
def add_from_gguf(request: Request, file: OptionalText, name: OptionalText = ""):
    """Register a GGUF file, then show it in the list."""
    manifest = service.add_from_gguf(request.app.state.settings, file, name)
    return redirect(request, f"/models/base?added={quote(manifest.name, safe='')}")


@router.get("/models/downloads/{name}", include_in_schema=False)
def download_progress(request: Request, name: str):
    """A download's progress fragment (it polls itself while the download runs)."""
    ctx = {"download": _downloads(request).get(name)}
    return render(request, "basemodels/add.html", ctx, partial="basemodels/_download.html")


@router.post("/models/downloads/{name}/cancel", include_in_schema=False)
def cancel_download(request: Request, name: str):
    """Stop a download (its partial files stay for a resume)."""
    _downloads(request).cancel(name)
    return redirect(request, f"/models/add?download={quote(name, safe='')}#hub")


@router.post("/models/base/{name}/delete", include_in_schema=False)
def delete_base_model(request: Request, name: str, session: SessionDep):
    """Delete an added base model (refused while maintenance is off)."""
    delete_added(session, request.app.state.settings, name)
    return redirect(request, "/models/base")
