"""The models page: tuned models with their job, base model, dataset snapshot and date; and their exports."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.jobs import export as exports
from app.jobs import forms as job_form
from app.settings.maintenance import maintenance_enabled
from app.web.rendering import SessionDep, redirect, render

router = APIRouter(tags=["models"])

FormatQuery = Annotated[
    Literal["adapter", "merged", "gguf"], Query(alias="format", description="adapter, merged (each a .tar) or gguf")
]
QuantQuery = Annotated[
    Literal["f16", "q8_0"], Query(description="The GGUF's weights: f16, or q8_0 (about half the size)")
]
_EXPORTED = {"application/x-tar": {}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


@router.get("/models", include_in_schema=False)
def models_page(request: Request, session: SessionDep, deleted: str = ""):
    """Every tuned model that was not deleted; `deleted` names the model just deleted, for the message."""
    ctx = {
        "rows": job_form.tuned_models_view(session),
        "base_models": job_form.base_models_view(request.app.state.settings),
        "maintenance": maintenance_enabled(session),
        "deleted": job_form.deleted_model(session, deleted),
    }
    return render(request, "models/index.html", ctx)


@router.post("/models/{model_id:path}/delete", include_in_schema=False)
def delete_model(request: Request, model_id: str, session: SessionDep):
    """Delete a tuned model (refused while maintenance is off: a flash message from an htmx request)."""
    job_form.delete_model(session, request.app.state.settings, model_id)
    return redirect(request, f"/models?deleted={quote(model_id, safe='')}")


@router.get("/models/{model_id:path}/export", include_in_schema=False)
def export_page(request: Request, model_id: str, session: SessionDep):
    """A tuned model's or checkpoint's downloads (adapter, merged, GGUF) and its Ollama Modelfile."""
    ctx = exports.export_view(session, request.app.state.settings, model_id)
    return render(request, "models/export.html", ctx, partial="models/_export.html")


def _stream(download: exports.Download) -> StreamingResponse:
    headers = {
        "Content-Disposition": f'attachment; filename="{download.filename}"',
        "Content-Length": str(download.size),
    }
    # A sync iterator: Starlette reads it on a worker thread, never on the event loop.
    return StreamingResponse(download.chunks, media_type=download.media_type, headers=headers)


@router.get("/models/{model_id:path}/export/download", include_in_schema=False)
def export_download(
    request: Request,
    model_id: str,
    session: SessionDep,
    export_format: FormatQuery,
    quant: QuantQuery = "f16",
):
    """The dashboard's download buttons (the same files as the API's)."""
    return _stream(exports.download(session, request.app.state.settings, model_id, export_format, quant))


@router.get(
    "/api/models/{model_id:path}/export", response_class=StreamingResponse, responses={200: {"content": _EXPORTED}}
)
def export_model(
    request: Request,
    model_id: str,
    session: SessionDep,
    export_format: FormatQuery,
    quant: QuantQuery = "f16",
):
    """Download a local tuned model or checkpoint: `adapter` (a PEFT adapter that peft and vLLM's --lora-modules
    load), `merged` (a Hugging Face directory with the adapter merged) or `gguf` (one file for llama.cpp and Ollama,
    tokenizer and chat template included). Built on the first request (seconds to minutes), then cached."""
    return _stream(exports.download(session, request.app.state.settings, model_id, export_format, quant))
