"""Dataset pages: the list (create, rename, delete, duplicate) and one dataset's examples, import and export."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from sqlmodel import Session

from app.datasets import datasets as ds
from app.datasets import examples as ex
from app.datasets import exporter, importer
from app.datasets.training_plan import training_plan
from app.errors import NotFound
from app.web.api_types import DbId, DbIdField, Offset, OffsetForm
from app.web.rendering import SessionDep, is_htmx, plural, redirect, render

router = APIRouter(tags=["pages"], include_in_schema=False)
PAGE_SIZE = 50


def _list(request: Request, session: Session, message: str | None = None, source: str = ""):
    context = {"datasets": ds.list_datasets(session, source), "message": message, "source": source}
    return render(request, "datasets/index.html", context, partial="datasets/_list.html")


@router.get("/datasets")
def datasets_page(request: Request, session: SessionDep, source: str = ""):
    """Every dataset with its counts; `source` = upload | dashboard filters by where it was made."""
    return _list(request, session, source=source)


@router.post("/datasets")
def create(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "supervised",
):
    """Create a dataset (supervised or preference) and open it."""
    dataset = ds.create_dataset(session, name, description, kind)
    return redirect(request, f"/datasets/{dataset.id}")


@router.post("/datasets/{dataset_id}/rename")
def rename(
    request: Request,
    session: SessionDep,
    dataset_id: DbId,
    name: Annotated[str, Form()] = "",
    description: Annotated[str | None, Form()] = None,
    back: Annotated[str, Form()] = "list",
):
    """Rename a dataset (and optionally change its description)."""
    dataset = ds.update_dataset(session, dataset_id, name=name, description=description)
    if back == "dataset":
        return redirect(request, f"/datasets/{dataset.id}")
    return (
        _list(request, session, f"Renamed to “{dataset.name}”.") if is_htmx(request) else redirect(request, "/datasets")
    )


@router.get("/datasets/{dataset_id}/delete")
def confirm_delete(request: Request, session: SessionDep, dataset_id: DbId):
    """Ask before deleting (the page a click without JavaScript lands on)."""
    summary = ds.summarize(session, ds.get_dataset(session, dataset_id))
    return render(request, "datasets/delete.html", {"summary": summary})


@router.post("/datasets/{dataset_id}/delete")
def delete(request: Request, session: SessionDep, dataset_id: DbId):
    """Delete a dataset and its examples."""
    summary = ds.summarize(session, ds.get_dataset(session, dataset_id))
    ds.delete_dataset(session, dataset_id)
    done = f"Deleted “{summary.name}” and its {plural(summary.examples, 'example')}."
    if is_htmx(request) and "/datasets/" not in request.headers.get("hx-current-url", ""):
        return _list(request, session, done)
    return redirect(request, "/datasets", done)


@router.post("/datasets/{dataset_id}/duplicate")
def duplicate(request: Request, session: SessionDep, dataset_id: DbId):
    """Copy a dataset with all its examples."""
    copy = ds.duplicate_dataset(session, dataset_id)
    if is_htmx(request) and "/datasets/" not in request.headers.get("hx-current-url", ""):
        return _list(request, session, f"Created “{copy.name}”.")
    return redirect(request, f"/datasets/{copy.id}")


def _filters(q: str = "", split: str = "", valid: str = "", sort: str = "position", offset: int = 0) -> dict:
    return {
        "q": q,
        "split": split if split in ("train", "validation", "none") else "",
        "valid": valid if valid in ("valid", "invalid") else "",
        "sort": sort if sort in ex.SORTS else "position",
        "offset": max(0, offset),
    }


def _body(
    request: Request, session: Session, dataset_id: int, filters: dict, message: str | None = None, import_result=None
):
    dataset = ds.get_dataset(session, dataset_id)
    valid = {"valid": True, "invalid": False}.get(filters["valid"])
    counts = ds.dataset_counts(session, dataset_id)
    # Unfiltered, the total is already in the counts: no second pass over the index.
    known = counts.examples if not (filters["q"] or filters["split"] or filters["valid"]) else None
    page = ex.list_examples(
        session,
        dataset_id,
        offset=filters["offset"],
        limit=PAGE_SIZE,
        q=filters["q"],
        split=filters["split"] or None,
        valid=valid,
        sort=filters["sort"],
        total=known,
    )
    keep = {k: v for k, v in filters.items() if v and k != "offset"}
    context = {
        "dataset": dataset,
        "counts": counts,
        "plan": training_plan(session, dataset_id),
        "page": page,
        "filters": filters,
        "query": urlencode(keep),
        "sorts": ex.SORTS,
        "others": ex.other_datasets(session, dataset_id),
        "message": message,
        "result": import_result,
    }
    return render(request, "datasets/show.html", context, partial="datasets/_body.html")


@router.get("/datasets/{dataset_id}")
def dataset_page(
    request: Request,
    session: SessionDep,
    dataset_id: DbId,
    q: str = "",
    split: str = "",
    valid: str = "",
    sort: str = "position",
    offset: Offset = 0,
):
    """One dataset: counts, filters, 50 examples a page, bulk actions, import and export."""
    return _body(request, session, dataset_id, _filters(q, split, valid, sort, offset))


def _after_post(request: Request, session: Session, dataset_id: int, filters: dict, message: str):
    if is_htmx(request):
        return _body(request, session, dataset_id, filters, message)
    keep = {k: v for k, v in filters.items() if v}
    return redirect(request, f"/datasets/{dataset_id}" + (f"?{urlencode(keep)}" if keep else ""), message)


@router.post("/datasets/{dataset_id}/bulk")
def bulk(
    request: Request,
    session: SessionDep,
    dataset_id: DbId,
    action: Annotated[str, Form()] = "",
    ids: Annotated[list[DbIdField] | None, Form()] = None,
    target_split: Annotated[str, Form()] = "",
    target_dataset: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
    split: Annotated[str, Form()] = "",
    valid: Annotated[str, Form()] = "",
    sort: Annotated[str, Form()] = "position",
    offset: OffsetForm = 0,
):
    """Delete, set the split of, or copy the selected examples."""
    filters = _filters(q, split, valid, sort, offset)
    message = ex.bulk_action(session, dataset_id, action, ids or [], target_split, target_dataset)
    return _after_post(request, session, dataset_id, filters, message)


@router.post("/datasets/{dataset_id}/split")
def split_randomly(
    request: Request,
    session: SessionDep,
    dataset_id: DbId,
    percent: Annotated[str, Form()] = "10",
    seed: Annotated[str, Form()] = "0",
):
    """Assign train/validation randomly by a percentage and a seed."""
    counts = ex.split_randomly(session, dataset_id, percent, seed)
    message = f"Split randomly (seed {seed}): {counts['train']:,} train, {counts['validation']:,} validation."
    return _after_post(request, session, dataset_id, _filters(), message)


@router.post("/datasets/{dataset_id}/import")
def import_file(
    request: Request,
    session: SessionDep,
    dataset_id: DbId,
    file: Annotated[UploadFile, File()],
    format: Annotated[str, Form()] = "auto",
):
    """Import an uploaded JSONL or CSV file; rejected lines are counted, the first listed, all kept for download."""
    settings = request.app.state.settings
    result = importer.import_file(
        session, dataset_id, file.file, filename=file.filename or "", kind=format, settings=settings
    )
    if is_htmx(request):
        context = {"dataset": ds.get_dataset(session, dataset_id), "result": result}
        return render(request, "datasets/_import_result.html", context, partial="datasets/_import_result.html")
    return _body(request, session, dataset_id, _filters(), import_result=result)


@router.get("/datasets/{dataset_id}/imports/{import_id}/rejected")
def rejected_lines(request: Request, session: SessionDep, dataset_id: DbId, import_id: str):
    """Download the raw text of an import's rejected lines."""
    ds.get_dataset(session, dataset_id)
    path = importer.rejected_path(request.app.state.settings, dataset_id, import_id)
    if not path.exists():
        return render(
            request, "error.html", {"status": 404, "message": "Those rejected lines are gone."}, status_code=404
        )
    return FileResponse(path, media_type="text/plain; charset=utf-8", filename=f"rejected-lines-{import_id}.jsonl")


@router.get("/datasets/{dataset_id}/imports/{import_id}/reasons")
def rejected_reasons(request: Request, session: SessionDep, dataset_id: DbId, import_id: str):
    """Download the list of an import's rejected lines: number, code and message, one JSON object a line."""
    ds.get_dataset(session, dataset_id)
    try:
        chunks = importer.rejected_reasons(request.app.state.settings, dataset_id, import_id)
    except NotFound:
        return render(
            request, "error.html", {"status": 404, "message": "Those rejected lines are gone."}, status_code=404
        )
    disposition = f'attachment; filename="rejected-lines-{import_id}-reasons.jsonl"'
    return StreamingResponse(chunks, media_type="application/jsonl", headers={"Content-Disposition": disposition})


@router.get("/datasets/{dataset_id}/export")
def export(request: Request, session: SessionDep, dataset_id: DbId, split: str = "all", only_valid: bool = True):
    """Download the dataset (or one split) as JSONL."""
    dataset = ds.get_dataset(session, dataset_id)
    exporter.count_exported(session, dataset_id, split, only_valid)  # refuses a bad split before streaming starts
    filename = f"{_slug(dataset.name)}-{split}.jsonl"
    return StreamingResponse(
        exporter.export_chunks(request.app.state.engine, dataset_id, split, only_valid),
        media_type="application/jsonl",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _slug(name: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return "-".join(filter(None, slug.split("-")))[:60] or "dataset"
