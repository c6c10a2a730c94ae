"""Preference pairs from the browser: "prefer this answer" in the compare view, and the decided votes of a blind
A/B review, saved to a preference dataset (an existing one or a new one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from app.datasets.limits import Limits
from app.playground import preferences
from app.web.rendering import SessionDep, flash, redirect, render

router = APIRouter(tags=["playground"], include_in_schema=False)
Column = Annotated[int, Form(ge=0, le=2)]


@router.post("/playground/prefer")
def prefer(
    request: Request,
    session: SessionDep,
    messages: Annotated[str, Form()],
    preferred: Column,
    rejected: Column,
    dataset_id: Annotated[str, Form()] = preferences.NEW,
    new_name: Annotated[str, Form()] = "",
    system: Annotated[str, Form()] = "",
    tools: Annotated[str, Form()] = "",
):
    """Save the chosen column's answer as preferred and the other's as rejected, in a preference dataset."""
    record = preferences.pair_record(messages, system, tools, preferred, rejected)
    limits = Limits.of(request.app.state.settings)
    example, dataset = preferences.save_preferred(session, dataset_id, new_name, record, limits)
    response = render(request, "playground/_preferred.html", {"example": example, "dataset": dataset})
    return flash(request, response, f"Saved to {dataset.name} (example {example.position + 1})")


@router.get("/reviews/{review_id}/preference-pairs")
def review_pairs_form(request: Request, review_id: str, session: SessionDep):
    """The review results page's form (loaded into it): where its decided votes go as preference pairs."""
    ctx = {
        "review_id": review_id,
        "decided": preferences.decided_votes(session, review_id),
        "preference_datasets": preferences.preference_datasets(session),
    }
    return render(request, "playground/_review_pairs.html", ctx)


@router.post("/reviews/{review_id}/preference-pairs")
def review_pairs(
    request: Request,
    review_id: str,
    session: SessionDep,
    dataset_id: Annotated[str, Form()] = preferences.NEW,
    new_name: Annotated[str, Form()] = "",
):
    """Every vote of a blind review that picked a side, saved as a pair (the winner preferred)."""
    limits = Limits.of(request.app.state.settings)
    count, dataset = preferences.save_review_pairs(session, review_id, dataset_id, new_name, limits)
    noun = "pair" if count == 1 else "pairs"
    return redirect(request, f"/datasets/{dataset.id}", f"Saved {count} preference {noun} to {dataset.name}")
