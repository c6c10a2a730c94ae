"""Builders for the compare and review tests: an eval and finished runs written straight to the tables."""

from __future__ import annotations

from sqlmodel import Session

from app.tables import Eval, EvalRun, EvalRunItem, EvalRunStatus
from app.tables.common import utcnow

GRADER = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.reference}}"}


def make_eval(session: Session, name: str = "arithmetic eval", dataset_id: int | None = None) -> Eval:
    """An eval with one string_check grader."""
    row = Eval(
        name=name,
        data_source_config={"type": "custom", "item_schema": {"type": "object"}, "include_sample_schema": True},
        testing_criteria=[GRADER],
        dataset_id=dataset_id,
        split="all" if dataset_id else None,
    )
    session.add(row)
    session.commit()
    return row


def question(i: int) -> dict:
    """Item i: what is i plus i, answered 2i."""
    return {"messages": [{"role": "user", "content": f"What is {i} plus {i}?"}], "reference": str(i + i)}


def make_run(
    session: Session,
    eval_id: str,
    model: str,
    answers: dict[int, str | None],
    status: EvalRunStatus = EvalRunStatus.completed,
    graders: tuple[str, ...] = ("exact",),
) -> EvalRun:
    """A run whose item i answered answers[i] (None: the generation failed); every grader passes the right sum."""
    run = EvalRun(eval_id=eval_id, model=model, name=f"{model} run", data_source={"type": "completions"})
    run.status = status
    session.add(run)
    session.commit()
    counts = {"passed": 0, "failed": 0, "errored": 0}
    for index, answer in answers.items():
        item = question(index)
        if answer is None:
            sample = {"input": item["messages"], "output": [], "error": {"code": "model_failed", "message": "boom"}}
            results, status_text = [], "error"
            counts["errored"] += 1
        else:
            sample = {"input": item["messages"], "output": [{"role": "assistant", "content": answer}], "error": None}
            passed = answer == item["reference"]
            results = [{"name": g, "type": "string_check", "score": float(passed), "passed": passed} for g in graders]
            status_text = "pass" if passed else "fail"
            counts["passed" if passed else "failed"] += 1
        session.add(
            EvalRunItem(run_id=run.id, item_index=index, item=item, sample=sample, results=results, status=status_text)
        )
    run.n_items = run.n_done = len(answers)
    run.result_counts = {"total": len(answers), **counts}
    run.per_testing_criteria_results = [
        {"testing_criteria": g, "passed": counts["passed"], "failed": counts["failed"]} for g in graders
    ]
    run.finished_at = utcnow()
    session.add(run)
    session.commit()
    return run


def two_runs(session: Session, n: int = 6) -> tuple[Eval, EvalRun, EvalRun]:
    """Base gets items 0-1 right; tuned gets 0-3 right but fails item 1; item 5 errors on base."""
    ev = make_eval(session)
    base = {i: (str(2 * i) if i < 2 else "no idea") for i in range(n)}
    base[n - 1] = None
    tuned = {i: (str(2 * i) if i < 4 else "dunno") for i in range(n)}
    tuned[1] = "3"
    return ev, make_run(session, ev.id, "tiny-llama", base), make_run(session, ev.id, "ft:tiny-llama:x:ftjob-1", tuned)
