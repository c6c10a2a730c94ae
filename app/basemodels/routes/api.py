"""/api/base-models: list base models, add one (Hugging Face repo, local directory, GGUF file), follow a
download, cancel it, delete an added model."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from app.basemodels import service
from app.basemodels.downloads import Download, ModelDownloads
from app.basemodels.registry import delete_added
from app.web.rendering import SessionDep

router = APIRouter(prefix="/api/base-models", tags=["base models"])
Batch = Annotated[int | None, Query(ge=1, le=256, description="Batch size the memory fit is judged at.")]
Sequence = Annotated[int | None, Query(ge=16, le=131072, description="Tokens per example for the memory fit.")]


class HubSource(BaseModel):
    """A model on the Hugging Face Hub (or HF_ENDPOINT's mirror)."""

    kind: Literal["hf"]
    repo: str = Field(description="owner/name")
    revision: str = Field("main", description="Branch, tag or commit.")
    token: str | None = Field(None, description="Access token for gated or private repos: used once, stored nowhere.")


class DirectorySource(BaseModel):
    """A Hugging Face directory on this machine (config.json, safetensors, tokenizer, chat template)."""

    kind: Literal["directory"]
    path: str = Field(description="Absolute path of the directory.")


class GgufSource(BaseModel):
    """A GGUF file on this machine, converted into a Hugging Face directory on first use."""

    kind: Literal["gguf"]
    file: str = Field(description="Absolute path of the .gguf file.")


class AddBaseModel(BaseModel):
    """Where the model comes from, and the name it gets (made from the source when omitted)."""

    source: Annotated[HubSource | DirectorySource | GgufSource, Field(discriminator="kind")]
    name: str | None = None


def _downloads(request: Request) -> ModelDownloads:
    downloads: ModelDownloads = request.app.state.model_downloads
    return downloads


def _download_view(download: Download) -> dict[str, Any]:
    return {
        "object": "base_model.download",
        "name": download.name,
        "repo": download.repo,
        "revision": download.revision,
        "commit": download.commit,
        "status": download.status,
        "message": download.message,
        "done_bytes": download.done_bytes,
        "total_bytes": download.total_bytes,
        "files": [asdict(f) for f in download.files],
    }


@router.get("")
def list_base_models(
    request: Request, session: SessionDep, batch: Batch = None, sequence: Sequence = None
) -> dict[str, Any]:
    """Every base model with architecture, size, context length, licence, whether it fits for LoRA training, and
    the training and chat tokens/s measured on this machine (null until measured)."""
    settings = request.app.state.settings
    rows = service.base_model_rows(
        settings,
        batch or settings.fit_batch_size,
        sequence or settings.fit_sequence_length,
        session=session,
    )
    data = [
        {
            "object": "base_model",
            "name": r.name,
            "source": r.source,
            "origin": r.origin,
            "ready": r.ready,
            "added": r.added,
            **asdict(r.facts),
            "fits": [
                {"where": f.where, "need_bytes": f.need_bytes, "have_bytes": f.have_bytes, "fits": f.fits}
                for f in r.fits
            ],
            "training_tokens_per_second": r.throughput.training_tokens_per_second,
            "chat_tokens_per_second": r.throughput.chat_tokens_per_second,
            "throughput_measured_on": {
                "training_job": r.throughput.training_job,
                "training_processes": r.throughput.training_processes,
                "training_device": r.throughput.training_device,
            },
        }
        for r in rows
    ]
    return {"object": "list", "data": data}


@router.post("", status_code=201)
def add_base_model(request: Request, body: AddBaseModel, response: Response) -> dict[str, Any]:
    """Add a base model: a local directory or GGUF file at once (201), a Hub repo as a background download (202)."""
    settings = request.app.state.settings
    source = body.source
    if isinstance(source, HubSource):
        download = service.add_from_hub(
            settings, _downloads(request), source.repo, source.revision, source.token, body.name
        )
        response.status_code = 202
        return _download_view(download)
    if isinstance(source, DirectorySource):
        manifest = service.add_from_directory(settings, source.path, body.name)
    else:
        manifest = service.add_from_gguf(settings, source.file, body.name)
    return {"object": "base_model", **asdict(manifest)}


@router.get("/downloads/{name}")
def get_download(request: Request, name: str) -> dict[str, Any]:
    """A download's progress: status, bytes done and total, per file."""
    return _download_view(_downloads(request).get(name))


@router.post("/downloads/{name}/cancel")
def cancel_download(request: Request, name: str) -> dict[str, Any]:
    """Stop a download; its partial files stay, and adding the same repo and name again resumes it."""
    return _download_view(_downloads(request).cancel(name))


@router.delete("/{name}")
def delete_base_model(request: Request, name: str, session: SessionDep) -> dict[str, Any]:
    """Delete an added base model (refused while maintenance is off); a local directory or GGUF file stays."""
    delete_added(session, request.app.state.settings, name)
    return {"object": "base_model.deleted", "name": name, "deleted": True}
