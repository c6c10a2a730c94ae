"""/api for bulk fixes and the revision history: preview (GET) and apply (POST) a fix, list and undo steps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.datasets import fixes
from app.tables.revision import DatasetRevision
from app.web.api_types import DbId, DbIdField, UtcDateTime
from app.web.rendering import SessionDep

router = APIRouter(prefix="/api", tags=["datasets"])


class ChangeOut(BaseModel):
    where: str = Field(description="Which message changes, e.g. 'message 3 (assistant)'.")
    before: str = Field(description="Its text before, cut around the change (a found secret only partly).")
    after: str


class SampleOut(BaseModel):
    example_id: int
    position: int
    changes: list[ChangeOut]


class PreviewOut(BaseModel):
    name: str
    title: str
    explains: str
    n_examples: int = Field(description="How many examples were looked at.")
    n_changed: int = Field(description="How many examples applying the fix would change (or delete).")
    n_clusters: int | None = Field(None, description="near_duplicates only: how many clusters there are.")
    samples: list[SampleOut] = Field(description="Before/after diffs of the first few examples it changes.")


class FixIn(BaseModel):
    example_ids: list[DbIdField] | None = Field(
        None, max_length=100_000, description="Only these examples (default: the whole dataset)."
    )
    keep: DbIdField | None = Field(
        None, description="near_duplicates: keep this example of the cluster `example_ids`, delete the others."
    )
    merge: bool = Field(False, description="near_duplicates with `keep`: the kept example takes the others' notes.")


class AppliedOut(BaseModel):
    message: str = Field(description="What the step did, e.g. 'Cut trailing whitespace in 3 examples.'")
    n_changed: int
    revision_id: int | None = Field(description="The step in the dataset's history (null: nothing changed).")


class RevisionOut(BaseModel):
    id: int
    dataset_id: int
    fix: str
    summary: str
    n_changed: int
    n_deleted: int
    created_at: UtcDateTime
    undone_at: UtcDateTime | None


class UndoOut(BaseModel):
    message: str
    revision: RevisionOut


def preview_out(preview: fixes.Preview) -> dict[str, Any]:
    """A preview as the API shows it."""
    fix = preview.fix
    return {
        "name": fix.name,
        "title": fix.title,
        "explains": fix.explains,
        "n_examples": preview.n_examples,
        "n_changed": preview.n_changed,
        "n_clusters": preview.n_clusters,
        "samples": [
            {"example_id": d.example_id, "position": d.position, "changes": [vars(c) for c in d.changes]}
            for d in preview.diffs
        ],
    }


def revision_out(revision: DatasetRevision) -> dict[str, Any]:
    """A revision without its stored before-state."""
    return revision.model_dump(exclude={"before"})


@router.get("/datasets/{dataset_id}/fixes", response_model=list[PreviewOut])
def list_fixes(dataset_id: DbId, session: SessionDep):
    """Every bulk fix with how many of the dataset's examples it would change."""
    return [preview_out(p) for p in fixes.preview_all(session, dataset_id)]


@router.get("/datasets/{dataset_id}/fixes/{name}", response_model=PreviewOut)
def preview_fix(
    dataset_id: DbId,
    name: str,
    session: SessionDep,
    example_ids: Annotated[list[DbIdField] | None, Query(max_length=100)] = None,
):
    """Preview a fix (tool_arguments, trailing_whitespace, mask_pii, near_duplicates): nothing is written."""
    return preview_out(fixes.preview_fix(session, dataset_id, name, example_ids))


@router.post("/datasets/{dataset_id}/fixes/{name}", response_model=AppliedOut)
def apply_fix(dataset_id: DbId, name: str, session: SessionDep, body: FixIn | None = None):
    """Apply a fix as one undoable step; near_duplicates with `keep` keeps that example of the cluster given."""
    body = body or FixIn()
    fixes.get_fix(name)
    if name == "near_duplicates" and body.keep is not None:
        applied = fixes.keep_one(session, dataset_id, body.keep, body.example_ids or [], merge=body.merge)
    else:
        applied = fixes.apply_fix(session, dataset_id, name, body.example_ids)
    return vars(applied)


@router.get("/datasets/{dataset_id}/revisions", response_model=list[RevisionOut])
def list_revisions(dataset_id: DbId, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50):
    """The dataset's bulk fixes, newest first."""
    return [revision_out(r) for r in fixes.list_revisions(session, dataset_id, limit)]


@router.post("/datasets/{dataset_id}/revisions/{revision_id}/undo", response_model=UndoOut)
def undo_revision(dataset_id: DbId, revision_id: DbId, session: SessionDep):
    """Undo a step: its examples go back to what they were; 409 if one of them changed since."""
    message = fixes.undo_revision(session, dataset_id, revision_id)
    return {"message": message, "revision": revision_out(fixes.get_revision(session, dataset_id, revision_id))}
