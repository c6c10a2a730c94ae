"""The worker's eval lane: runs queued runs beside jobs, hands a run back at shutdown (resumed later without
redoing items), and evaluates each checkpoint of a job with an eval attached, once."""

from __future__ import annotations

import shutil
import threading

from sqlmodel import Session, col, func, select

from app.evals.checkpoints import checkpoint_run, queue_checkpoint_eval
from app.evals.evals import create_eval
from app.evals.runs import create_run, get_run, list_runs_for_job
from app.jobs import jobs
from app.tables import Checkpoint, EvalRunItem, EvalRunStatus, Job, JobEvent, JobStatus
from app.worker.eval_lane import EvalLane
from app.worker.loop import Worker
from tests.evals.conftest import TINY, short
from tests.support.waiting import wait_for
from tests.support.worker_main import FAKE_TRAINER


def items_written(engine, run_id: str) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).where(col(EvalRunItem.run_id) == run_id)).one()


def status_of(engine, eval_id: str, run_id: str) -> EvalRunStatus:
    with Session(engine) as session:
        return get_run(session, eval_id, run_id).status


def test_the_worker_runs_eval_runs_on_its_lane(session, settings, engine, chat_engine, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY, data_source=short())
    worker = Worker(settings, engine, providers=["local"], chat_engine=chat_engine)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: status_of(engine, an_eval.id, run.id) == EvalRunStatus.completed, what="the run to complete")
    finally:
        worker.shutdown.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    session.expire_all()
    assert get_run(session, an_eval.id, run.id).n_done == 4


def test_a_worker_with_evals_off_leaves_runs_queued(session, settings, engine, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY, data_source=short())
    off = settings.model_copy(update={"worker_evals": False})
    Worker(off, engine, providers=["local"]).run(once=True)
    assert status_of(engine, an_eval.id, run.id) == EvalRunStatus.queued


def test_shutdown_hands_the_run_back_and_the_next_lane_resumes_it(session, settings, engine, chat_engine):
    content = [{"item": {"q": f"Tell me about {i}"}} for i in range(40)]
    row = create_eval(session, settings, name="long", testing_criteria=[])
    data_source = {
        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
        "source": {"type": "file_content", "content": content},
        "sampling_params": {"max_completion_tokens": 48},
    }
    run = create_run(session, settings, row.id, model=TINY, data_source=data_source)
    shutdown = threading.Event()
    lane = EvalLane(settings, engine, "w1", shutdown, chat_engine=chat_engine)
    thread = threading.Thread(target=lane.run)
    thread.start()
    wait_for(lambda: items_written(engine, run.id) >= 1, what="a first item")
    shutdown.set()
    thread.join(timeout=30)
    written = items_written(engine, run.id)
    session.expire_all()
    handed_back = get_run(session, row.id, run.id)
    assert handed_back.status == EvalRunStatus.queued and handed_back.worker_id is None
    assert 1 <= written < 40 and handed_back.n_done == written
    with Session(engine) as s:
        first_ids = set(s.exec(select(EvalRunItem.id).where(EvalRunItem.run_id == run.id)).all())

    EvalLane(settings, engine, "w2", threading.Event(), chat_engine=chat_engine).run(once=True)
    session.expire_all()
    done = get_run(session, row.id, run.id)
    assert done.status == EvalRunStatus.completed and done.n_done == 40 and done.attempts == 1
    with Session(engine) as s:
        rows = list(s.exec(select(EvalRunItem).where(EvalRunItem.run_id == run.id)))
    assert sorted(r.item_index for r in rows) == list(range(40))
    assert first_ids <= {r.id for r in rows}


def test_each_checkpoint_of_a_job_with_an_eval_is_evaluated_once(
    session, settings, engine, chat_engine, an_eval, dataset, tiny_adapter
):
    job = jobs.create_job(session, settings, jobs.JobRequest(dataset_id=dataset.id))
    job.eval_id = an_eval.id
    session.add(job)
    session.commit()
    options = {"local": {"command": FAKE_TRAINER}}
    worker = Worker(settings, engine, providers=["local"], provider_options=options, chat_engine=chat_engine)
    assert worker.step()  # trains: a checkpoint at steps 4 and 8
    session.expire_all()
    assert session.get(Job, job.id).status == JobStatus.succeeded
    runs = list_runs_for_job(session, job.id)
    checkpoints = list(session.exec(select(Checkpoint).where(Checkpoint.job_id == job.id)))
    assert sorted(r.name for r in runs) == ["step 4", "step 8"]
    assert {r.checkpoint_id for r in runs} == {c.id for c in checkpoints}
    assert {r.model for r in runs} == {c.fine_tuned_model_checkpoint for c in checkpoints}
    assert all(r.status == EvalRunStatus.queued and r.n_items == 4 for r in runs)
    events = session.exec(select(JobEvent.message).where(JobEvent.job_id == job.id)).all()
    assert sum("queued for evaluation" in m for m in events) == 2

    # A resumed job reports its checkpoints again: no second run.
    for cp in checkpoints:
        assert queue_checkpoint_eval(session, settings, job.id, step=cp.step_number) is None
        assert checkpoint_run(session, settings, job.id, cp.id).id in {r.id for r in runs}
    assert len(list_runs_for_job(session, job.id)) == 2

    for cp in checkpoints:  # the fake trainer writes no weights: give each checkpoint a real adapter
        shutil.copytree(tiny_adapter, settings.data_dir / cp.path, dirs_exist_ok=True)
    worker.eval_lane.run(once=True)
    session.expire_all()
    ended = list_runs_for_job(session, job.id)
    assert [r.status for r in ended] == [EvalRunStatus.completed] * 2
    assert [r.n_done for r in ended] == [4, 4]


def test_a_job_without_eval_gets_no_checkpoint_runs(session, settings, engine, dataset):
    job = jobs.create_job(session, settings, jobs.JobRequest(dataset_id=dataset.id))
    Worker(settings, engine, providers=["local"], provider_options={"local": {"command": FAKE_TRAINER}}).run(once=True)
    session.expire_all()
    assert session.get(Job, job.id).status == JobStatus.succeeded
    assert list_runs_for_job(session, job.id) == []
