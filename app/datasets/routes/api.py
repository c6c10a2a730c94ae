"""JSON API for datasets and examples (`/api`), the same services the pages use."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.datasets import datasets as ds
from app.datasets import examples as ex
from app.datasets import exporter, importer
from app.datasets.limits import Limits
from app.errors import NotFound
from app.tables.dataset import Example
from app.web.api_types import DbId, Offset, UtcDateTime
from app.web.rendering import SessionDep
from app.web.streamed_upload import StreamedUpload

router = APIRouter(prefix="/api", tags=["datasets"])


class DatasetIn(BaseModel):
    name: str = Field(max_length=200, examples=["support-bot"])
    description: str = Field("", max_length=5000)
    kind: Literal["supervised", "preference"] = Field(
        "supervised", description="Chat examples (supervised) or preference pairs in OpenAI's DPO shape."
    )


class DatasetPatch(BaseModel):
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)


class Counts(BaseModel):
    examples: int
    train: int
    validation: int
    invalid: int


class DatasetOut(BaseModel):
    id: int
    name: str
    description: str
    kind: Literal["supervised", "preference"]
    created_at: UtcDateTime
    updated_at: UtcDateTime
    counts: Counts


class ExampleIn(BaseModel):
    """A chat example: `messages`, optional `tools`, and any other top-level key (kept verbatim); or, in a
    preference dataset, a pair in OpenAI's DPO shape: `input`, `preferred_output`, `non_preferred_output`."""

    model_config = ConfigDict(extra="allow")
    messages: list[Any] | None = Field(None, description="A chat example's messages (pairs give `input` instead).")
    input: dict[str, Any] | None = Field(None, description="A preference pair's conversation: messages, tools.")
    preferred_output: list[Any] | None = Field(None, description="A pair's better answer: one assistant message.")
    non_preferred_output: list[Any] | None = Field(None, description="A pair's worse answer: one assistant message.")
    split: Literal["train", "validation"] | None = None
    note: str = ""

    def record(self) -> dict[str, Any]:
        """The chat record (or preference pair) without Tuneboard's own fields."""
        if self.messages is None and self.input is not None:
            pair = {"input": self.input, "preferred_output": self.preferred_output}
            return pair | {"non_preferred_output": self.non_preferred_output, **(self.model_extra or {})}
        return {"messages": self.messages, **(self.model_extra or {})}


class ExampleUpdate(ExampleIn):
    version: int = Field(description="The version you edited; a stale one is refused with 409.")


class RejectedOut(BaseModel):
    line: int
    code: str
    message: str


class ImportOut(BaseModel):
    imported: int = Field(description="How many lines became examples (valid or flagged invalid).")
    rejected: list[RejectedOut] = Field(
        description=f"The first rejected lines (at most {importer.SAMPLE:,}), each with its number and why."
    )
    rejected_count: int = Field(description="How many lines were rejected in all.")
    rejected_url: str | None = Field(
        description="Every rejected line's number, code and message, one JSON object a line (null if none)."
    )
    rejected_raw_url: str | None = Field(
        description="Every rejected line's exact bytes, one a line, to fix and import again (null if none)."
    )


class ExamplesPage(BaseModel):
    total: int
    items: list[dict[str, Any]]


def dataset_out(summary: ds.DatasetSummary) -> dict[str, Any]:
    """A dataset as the API shows it."""
    d, c = summary.dataset, summary.counts
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "kind": d.kind,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "counts": {"examples": c.examples, "train": c.train, "validation": c.validation, "invalid": c.invalid},
    }


def example_out(e: Example) -> dict[str, Any]:
    """An example as the API shows it: its record's keys plus Tuneboard's bookkeeping."""
    out: dict[str, Any] = {"id": e.id, "dataset_id": e.dataset_id, **e.to_record()}
    out.update(
        position=e.position,
        split=e.split,
        note=e.note,
        valid=e.valid,
        n_errors=e.n_errors,
        n_warnings=e.n_warnings,
        problems=e.problems or [],
        version=e.version,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )
    return out


@router.post("/datasets", status_code=201, response_model=DatasetOut)
def create_dataset(body: DatasetIn, session: SessionDep):
    """Create a dataset."""
    dataset = ds.create_dataset(session, body.name, body.description, body.kind)
    return dataset_out(ds.summarize(session, dataset))


@router.get("/datasets", response_model=list[DatasetOut])
def list_datasets(session: SessionDep):
    """Every dataset with its counts, newest first."""
    return [dataset_out(s) for s in ds.list_datasets(session)]


@router.get("/datasets/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: DbId, session: SessionDep):
    """One dataset with its counts."""
    return dataset_out(ds.summarize(session, ds.get_dataset(session, dataset_id)))


@router.patch("/datasets/{dataset_id}", response_model=DatasetOut)
def update_dataset(dataset_id: DbId, body: DatasetPatch, session: SessionDep):
    """Rename a dataset or change its description."""
    dataset = ds.update_dataset(session, dataset_id, name=body.name, description=body.description)
    return dataset_out(ds.summarize(session, dataset))


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(dataset_id: DbId, session: SessionDep):
    """Delete a dataset and all its examples."""
    ds.delete_dataset(session, dataset_id)
    return Response(status_code=204)


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "A .jsonl or .csv file."}
                    },
                }
            }
        },
    }
}


@router.post("/datasets/{dataset_id}/import", response_model=ImportOut, openapi_extra=_UPLOAD_BODY)
async def import_file(
    request: Request, dataset_id: DbId, session: SessionDep, format: Literal["auto", "jsonl", "csv"] = "auto"
):
    """Import a JSONL (or CSV: system,user,assistant) file, multipart field `file`; every rejected line is counted
    and listed in the download at `rejected_url`, the first ones in the answer."""
    upload = StreamedUpload(request, "file")
    await upload.start()
    receiving = await run_in_threadpool(
        importer.start_import,
        session,
        dataset_id,
        filename=upload.filename or "",
        kind=format,
        settings=request.app.state.settings,
    )
    with receiving:  # read and checked as it arrives, with no transaction open
        async for data in upload.chunks():
            await run_in_threadpool(receiving.feed, data)
        await upload.finish()
        prepared = await run_in_threadpool(receiving.finish)
    result = await run_in_threadpool(importer.write_import, session, dataset_id, prepared)
    return import_out(dataset_id, result)


def import_out(dataset_id: int, result: importer.ImportResult) -> dict[str, Any]:
    """An import's result as the API shows it, with the links to its rejected lines."""
    base = f"/api/datasets/{dataset_id}/imports/{result.import_id}/rejected" if result.import_id else None
    return {**result.as_dict(), "rejected_url": base, "rejected_raw_url": f"{base}/raw" if base else None}


@router.get(
    "/datasets/{dataset_id}/imports/{import_id}/rejected",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}},
)
def rejected_lines(request: Request, dataset_id: DbId, import_id: str, session: SessionDep):
    """Every rejected line of an import: `{"line", "code", "message"}`, one JSON object a line, in file order."""
    ds.get_dataset(session, dataset_id)
    chunks = importer.rejected_reasons(request.app.state.settings, dataset_id, import_id)
    disposition = f'attachment; filename="rejected-lines-{import_id}.jsonl"'
    return StreamingResponse(chunks, media_type="application/jsonl", headers={"Content-Disposition": disposition})


@router.get(
    "/datasets/{dataset_id}/imports/{import_id}/rejected/raw",
    response_class=FileResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def rejected_raw(request: Request, dataset_id: DbId, import_id: str, session: SessionDep):
    """The exact bytes of an import's rejected lines, one a line, in file order."""
    ds.get_dataset(session, dataset_id)
    path = importer.rejected_path(request.app.state.settings, dataset_id, import_id)
    if not path.is_file():
        raise NotFound("No such import.", code="import_not_found", param="import_id")
    return FileResponse(path, media_type="text/plain; charset=utf-8", filename=f"rejected-lines-{import_id}.txt")


@router.get("/datasets/{dataset_id}/examples", response_model=ExamplesPage)
def list_examples(
    dataset_id: DbId,
    session: SessionDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    q: str | None = None,
    split: Literal["train", "validation", "none"] | None = None,
    valid: bool | None = None,
    sort: Literal["position", "-position", "newest", "errors", "longest"] = "position",
):
    """A page of examples, filtered by text, split and validity."""
    page = ex.list_examples(session, dataset_id, offset=offset, limit=limit, q=q, split=split, valid=valid, sort=sort)
    return {"total": page.total, "items": [example_out(e) for e in page.items]}


@router.post("/datasets/{dataset_id}/examples", status_code=201)
def add_example(request: Request, dataset_id: DbId, body: ExampleIn, session: SessionDep) -> dict[str, Any]:
    """Add one example (stored even if invalid, flagged with its problems; refused if over the size limits)."""
    limits = Limits.of(request.app.state.settings)
    return example_out(
        ex.add_example(session, dataset_id, body.record(), split=body.split, note=body.note, limits=limits)
    )


@router.get(
    "/datasets/{dataset_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {}}}},
)
def export(
    request: Request,
    dataset_id: DbId,
    session: SessionDep,
    split: Literal["all", "train", "validation"] = "all",
    only_valid: bool = True,
):
    """The dataset as OpenAI chat JSONL, or DPO JSONL for a preference dataset (only valid examples unless
    only_valid=false)."""
    ds.get_dataset(session, dataset_id)
    return StreamingResponse(
        exporter.export_chunks(request.app.state.engine, dataset_id, split, only_valid), media_type="application/jsonl"
    )


@router.get("/examples/{example_id}")
def get_example(example_id: DbId, session: SessionDep) -> dict[str, Any]:
    """One example."""
    return example_out(ex.get_example(session, example_id))


@router.put("/examples/{example_id}")
def update_example(request: Request, example_id: DbId, body: ExampleUpdate, session: SessionDep) -> dict[str, Any]:
    """Replace an example; `version` must be the current one (409 otherwise)."""
    fields = body.model_fields_set
    example = ex.update_example(
        session,
        example_id,
        body.record(),
        body.version,
        split=body.split if "split" in fields else ex.KEEP,
        note=body.note if "note" in fields else ex.KEEP,
        limits=Limits.of(request.app.state.settings),
    )
    return example_out(example)


@router.delete("/examples/{example_id}", status_code=204)
def delete_example(example_id: DbId, session: SessionDep):
    """Delete an example."""
    ex.delete_example(session, example_id)
    return Response(status_code=204)
