"""Compare two runs side by side; blind A/B reviews one item at a time (a person or a judge model picks), results
with the win rate and its interval (the only page that names the runs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from app.evals import compare, dashboard, reviews
from app.tables.common import MAX_DB_INT
from app.web.rendering import SessionDep, is_htmx, redirect, render

router = APIRouter(tags=["evals"], include_in_schema=False)
ItemIndex = Annotated[int, Form(ge=0, le=MAX_DB_INT)]


@router.get("/evals/{eval_id}/compare")
def compare_page(
    request: Request,
    eval_id: str,
    session: SessionDep,
    a: str = "",
    b: str = "",
    run: Annotated[list[str] | None, Query()] = None,
):
    """Two runs side by side: pass rates per grader with intervals, and the items that changed outcome."""
    run_a, run_b = compare.pick_pair(session, eval_id, a, b, run)
    ctx = {
        "cmp": compare.compare_runs(session, run_a, run_b),
        "model_groups": dashboard.model_groups(session, request.app.state.settings),
        "output_text": compare.output_text,
        "prompt_messages": compare.prompt_messages,
    }
    return render(request, "evals/compare.html", ctx)


@router.post("/evals/{eval_id}/reviews")
def start_review(
    request: Request,
    eval_id: str,
    session: SessionDep,
    a: Annotated[str, Form()] = "",
    b: Annotated[str, Form()] = "",
    run: Annotated[list[str] | None, Form()] = None,
    judge: Annotated[str, Form()] = "",
):
    """A blind review of two runs: by you (one item at a time), or by a judge model at once (then its results)."""
    run_a, run_b = compare.pick_pair(session, eval_id, a, b, run)
    review = reviews.create_review(session, run_a, run_b)
    if judge.strip():
        state = request.app.state
        reviews.judge_review(session, state.settings, state.chat_engine, review.id, judge.strip())
        return redirect(request, f"/reviews/{review.id}/results")
    return redirect(request, f"/reviews/{review.id}")


@router.get("/reviews/{review_id}")
def review_page(request: Request, review_id: str, session: SessionDep):
    """The next item without a vote: the prompt and two unnamed answers, Left and Right; results once all voted."""
    shown = reviews.next_vote(session, review_id)
    if shown is None:
        return RedirectResponse(f"/reviews/{review_id}/results", status_code=303)
    return render(request, "evals/review.html", {"shown": shown}, partial="evals/_review_item.html")


@router.post("/reviews/{review_id}/vote")
def vote(
    request: Request,
    review_id: str,
    session: SessionDep,
    item_index: ItemIndex,
    side: Annotated[str, Form()],
):
    """Record left, right or tie for the item, then show the next one (or the results after the last)."""
    reviews.vote_side(session, review_id, item_index, side)
    shown = reviews.next_vote(session, review_id)
    if shown is None or not is_htmx(request):
        return redirect(request, f"/reviews/{review_id}" if shown else f"/reviews/{review_id}/results")
    return render(request, "evals/_review_item.html", {"shown": shown})


@router.get("/reviews/{review_id}/results")
def review_results(request: Request, review_id: str, session: SessionDep):
    """Who won: wins, losses and ties, the win rate with its 95% interval, every vote with both runs named."""
    ctx = {
        "res": reviews.review_results(session, review_id),
        "votes": reviews.votes_shown(session, review_id),
        "model_groups": dashboard.model_groups(session, request.app.state.settings),
    }
    return render(request, "evals/review_results.html", ctx)


@router.post("/reviews/{review_id}/judge")
def judge(request: Request, review_id: str, session: SessionDep, model: Annotated[str, Form()]):
    """Let a judge model vote on the items still without a vote, each seen both ways round."""
    state = request.app.state
    reviews.judge_review(session, state.settings, state.chat_engine, review_id, model.strip())
    return redirect(request, f"/reviews/{review_id}/results")
