"""The example editor: create, edit (with a stale-save check), duplicate, delete, and live validation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlmodel import Session

from app.datasets import datasets as ds
from app.datasets import examples as ex
from app.datasets.forms import ROLES, editor_rows, top_level_texts
from app.datasets.limits import Limits
from app.datasets.pair_forms import BLANK_PAIR, answer_boxes, conversation_of
from app.tables.dataset import Example
from app.web.api_types import DbId
from app.web.rendering import SessionDep, is_htmx, redirect, render

router = APIRouter(tags=["pages"], include_in_schema=False)
BLANK = {
    "messages": [
        {"role": "system", "content": ""},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
    ]
}


def _editor(request: Request, session: Session, dataset_id: int, example: Example | None, message: str | None = None):
    dataset = ds.get_dataset(session, dataset_id)
    record = example.to_record() if example else (BLANK_PAIR if dataset.is_preference else BLANK)
    # A pair's conversation is edited as a chat example's messages are; its two answers beside each other.
    answers = answer_boxes(record) if dataset.is_preference else None
    chat = conversation_of(record) if dataset.is_preference else record
    context = {
        "dataset": dataset,
        "example": example,
        "rows": editor_rows(chat),
        "texts": top_level_texts(chat),
        "answers": answers,
        "roles": ROLES,
        "message": message,
        "action": f"/examples/{example.id}" if example else f"/datasets/{dataset_id}/examples",
        "check_url": f"/examples/{example.id}/check" if example else f"/datasets/{dataset_id}/examples/check",
    }
    return render(request, "examples/edit.html", context, partial="examples/_editor.html")


@router.get("/datasets/{dataset_id}/examples/new")
def new_example(request: Request, session: SessionDep, dataset_id: DbId):
    """An empty editor for a new example: system, user, assistant (a pair: system, user, and two answers)."""
    return _editor(request, session, dataset_id, None)


@router.post("/datasets/{dataset_id}/examples")
async def create_example(request: Request, session: SessionDep, dataset_id: DbId):
    """Save a new example from the editor and open it."""
    form = await request.form()
    example = ex.add_example(
        session,
        dataset_id,
        ex.record_from_form(form),
        split=str(form.get("split") or "") or None,
        note=str(form.get("note") or ""),
        limits=Limits.of(request.app.state.settings),
    )
    return redirect(request, f"/examples/{example.id}")


@router.get("/examples/{example_id}")
def edit_example(request: Request, session: SessionDep, example_id: DbId):
    """The editor for one example."""
    example = ex.get_example(session, example_id)
    return _editor(request, session, example.dataset_id, example)


@router.post("/examples/{example_id}")
async def save_example(request: Request, session: SessionDep, example_id: DbId):
    """Save the editor; a stale version is refused (409) and the person's text stays in the page."""
    form = await request.form()
    example = ex.update_example(
        session,
        example_id,
        ex.record_from_form(form),
        version=ex.form_version(form.get("version")),
        split=form.get("split") or None,
        note=str(form.get("note") or ""),
        limits=Limits.of(request.app.state.settings),
    )
    if not is_htmx(request):
        return redirect(request, f"/examples/{example.id}")
    return _editor(request, session, example.dataset_id, example, message=f"Saved (version {example.version}).")


async def _check(request: Request):
    form = await request.form()
    check = ex.check_form(form, Limits.of(request.app.state.settings))
    return render(request, "examples/_problems.html", {"check": check})


@router.post("/examples/{example_id}/check")
async def check_existing(request: Request, example_id: DbId):
    """Live validation of the editor's current text (nothing is saved)."""
    return await _check(request)


@router.post("/datasets/{dataset_id}/examples/check")
async def check_new(request: Request, dataset_id: DbId):
    """Live validation of a new example's text (nothing is saved)."""
    return await _check(request)


@router.post("/examples/{example_id}/duplicate")
def duplicate_example(request: Request, session: SessionDep, example_id: DbId):
    """Copy an example (placed right after it) and open the copy."""
    copy = ex.duplicate_example(session, example_id)
    return redirect(request, f"/examples/{copy.id}")


@router.post("/examples/{example_id}/delete")
def delete_example(request: Request, session: SessionDep, example_id: DbId):
    """Delete an example and go back to its dataset."""
    number = ex.get_example(session, example_id).position + 1
    dataset_id = ex.delete_example(session, example_id)
    return redirect(request, f"/datasets/{dataset_id}", f"Deleted example #{number}.")
