"""Bulk fixes on the dashboard: the Fix panel, a fix's preview and apply, near-duplicate review, the history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from app.datasets import datasets as ds
from app.datasets import examples as ex
from app.datasets import fixes
from app.datasets.fixes.catalog import MASK_PII
from app.datasets.fixes.sensitive_list import sensitive_examples, sensitive_in_example
from app.web.api_types import DbId, DbIdField
from app.web.rendering import SessionDep, redirect, render

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/datasets/{dataset_id}/fixes")
def fix_panel(request: Request, session: SessionDep, dataset_id: DbId):
    """The Fix panel (loaded after the page): each fix with how many examples it would change."""
    context = {"dataset": ds.get_dataset(session, dataset_id), "previews": fixes.preview_all(session, dataset_id)}
    return render(request, "datasets/_fixes_panel.html", context)


@router.get("/datasets/{dataset_id}/fixes/{name}")
def fix_preview(request: Request, session: SessionDep, dataset_id: DbId, name: str):
    """A fix's preview: how many examples change and a few before/after diffs, with the Apply button; masking's
    also lists what was found where (each only partly shown)."""
    dataset = ds.get_dataset(session, dataset_id)
    preview = fixes.preview_fix(session, dataset_id, name)
    context = {"dataset": dataset, "preview": preview, "sensitive": None}
    if name == MASK_PII:
        context["sensitive"] = sensitive_examples(session, dataset_id)
    return render(request, "datasets/fix_preview.html", context)


@router.post("/datasets/{dataset_id}/fixes/{name}")
def fix_apply(request: Request, session: SessionDep, dataset_id: DbId, name: str):
    """Apply a fix to the whole dataset as one undoable step and say how many examples it changed."""
    applied = fixes.apply_fix(session, dataset_id, name)
    return redirect(request, f"/datasets/{dataset_id}", applied.message)


@router.get("/datasets/{dataset_id}/near-duplicates")
def near_duplicates(request: Request, session: SessionDep, dataset_id: DbId):
    """The near-duplicate clusters side by side: keep one of each, or merge into one."""
    dataset = ds.get_dataset(session, dataset_id)
    total, clusters = fixes.review_clusters(session, dataset_id)
    return render(request, "datasets/near_duplicates.html", {"dataset": dataset, "total": total, "clusters": clusters})


@router.post("/datasets/{dataset_id}/near-duplicates/keep")
def keep_one(
    request: Request,
    session: SessionDep,
    dataset_id: DbId,
    keep: Annotated[DbIdField, Form()],
    ids: Annotated[list[DbIdField], Form()],
    merge: Annotated[bool, Form()] = False,
):
    """Keep one example of a cluster and delete the others (merge: it takes their notes)."""
    applied = fixes.keep_one(session, dataset_id, keep, ids, merge=merge)
    return redirect(request, f"/datasets/{dataset_id}/near-duplicates", applied.message)


@router.get("/datasets/{dataset_id}/revisions")
def revisions(request: Request, session: SessionDep, dataset_id: DbId, panel: bool = False):
    """The dataset's history of bulk fixes, each with Undo (`panel`: only the list, for the dataset page)."""
    context = {
        "dataset": ds.get_dataset(session, dataset_id),
        "revisions": fixes.list_revisions(session, dataset_id, limit=10 if panel else 100),
        "panel": panel,
    }
    page = "datasets/_revisions.html" if panel else "datasets/revisions.html"
    return render(request, page, context)


@router.post("/datasets/{dataset_id}/revisions/{revision_id}/undo")
def undo(request: Request, session: SessionDep, dataset_id: DbId, revision_id: DbId, back: Annotated[str, Form()] = ""):
    """Undo one step: its examples go back to what they were (refused if one changed since)."""
    message = fixes.undo_revision(session, dataset_id, revision_id)
    target = f"/datasets/{dataset_id}/revisions" if back == "revisions" else f"/datasets/{dataset_id}"
    return redirect(request, target, message)


@router.get("/examples/{example_id}/sensitive")
def example_sensitive(request: Request, session: SessionDep, example_id: DbId):
    """The editor's note of personal data and secrets in one example (partly hidden), with its Mask button."""
    example = ex.get_example(session, example_id)
    context = {"example": example, "found": sensitive_in_example(example)}
    return render(request, "examples/_sensitive.html", context)


@router.post("/examples/{example_id}/mask")
def mask_example(request: Request, session: SessionDep, example_id: DbId):
    """Mask personal data and secrets in one example (an undoable step of its dataset)."""
    example = ex.get_example(session, example_id)
    applied = fixes.apply_fix(session, example.dataset_id, "mask_pii", [example_id])
    return redirect(request, f"/examples/{example_id}", applied.message)
