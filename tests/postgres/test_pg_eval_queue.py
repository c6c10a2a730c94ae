"""The eval-run claim on PostgreSQL (FOR UPDATE SKIP LOCKED): many concurrent claimers take each run exactly once,
a locked run is skipped, and a run executes end to end on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import text
from sqlmodel import Session

from app.engine.inference import ChatEngine
from app.evals import queue
from app.evals.evals import create_eval
from app.evals.executor import run_eval
from app.evals.runs import create_run, get_run
from app.tables import EvalRun, EvalRunStatus
from tests.postgres.conftest import TINY
from tests.support.builders import make_dataset


def queue_raw_runs(engine, settings, n: int) -> list[str]:
    """n queued runs straight in the table (the claim needs nothing else)."""
    with Session(engine, expire_on_commit=False) as session:
        row = create_eval(session, settings, name="raw", testing_criteria=[])
        made = [EvalRun(eval_id=row.id, model=TINY, data_source={}) for _ in range(n)]
        session.add_all(made)
        session.commit()
        return [run.id for run in made]


def test_twelve_concurrent_claimers_take_each_of_forty_runs_exactly_once(engine, settings):
    made = queue_raw_runs(engine, settings, 40)
    taken: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def claimer(i: int) -> None:
        start.wait()
        try:
            while (run_id := queue.claim_next_run(engine, f"w{i}")) is not None:
                taken.append((run_id, f"w{i}"))
        except BaseException as exc:  # reported below: a failed claim must not pass silently
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    counts = Counter(run_id for run_id, _ in taken)
    assert sorted(counts) == sorted(made) and set(counts.values()) == {1}
    with Session(engine) as session:
        owners = {run_id: session.get(EvalRun, run_id).worker_id for run_id in made}
    assert owners == dict(taken)


def test_claimers_skip_a_locked_run_instead_of_waiting_for_it(engine, settings):
    first, second = queue_raw_runs(engine, settings, 2)
    with engine.connect() as holder:
        holder.execute(text("SELECT id FROM eval_runs WHERE id = :id FOR UPDATE"), {"id": first})
        assert queue.claim_next_run(engine, "w") == second


def test_a_run_executes_on_postgresql(settings, engine, session):
    dataset = make_dataset(session, n_train=2, n_validation=3)
    row = create_eval(session, settings, name="pg", testing_criteria=[], dataset_id=dataset.id)
    run = create_run(
        session, settings, row.id, model=TINY, data_source={"sampling_params": {"max_completion_tokens": 4}}
    )
    assert queue.claim_next_run(engine, "w1") == run.id
    with ChatEngine(settings) as chat_engine:
        assert run_eval(settings, engine, chat_engine, run.id, "w1", lambda: False) == EvalRunStatus.completed
    session.expire_all()
    done = get_run(session, row.id, run.id)
    assert done.n_done == 3 and done.result_counts["passed"] == 3
