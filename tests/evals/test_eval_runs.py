"""Run services: create (model checked, items frozen, data source completed), list, cancel, delete, output items,
summary and progress; the run queue's claim, heartbeat, takeover and release."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from app.errors import Conflict, Invalid, NotFound
from app.evals import queue
from app.evals.items import items_path, load_items
from app.evals.runs import (
    cancel_run,
    create_run,
    delete_run,
    get_output_item,
    get_run,
    list_output_items,
    list_runs,
    run_progress,
    run_summary,
)
from app.tables import EvalRunItem, EvalRunStatus
from tests.evals.conftest import TINY, short


def test_a_run_freezes_its_items_and_completes_its_data_source(session, settings, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY)
    assert run.id.startswith("evalrun_") and run.status == EvalRunStatus.queued
    assert run.n_items == 4 and run.name == TINY
    source = run.data_source
    assert source["model"] == TINY
    assert source["input_messages"] == {"type": "item_reference", "item_reference": "item.messages"}
    assert source["source"] == {"type": "dataset", "dataset_id": an_eval.dataset_id, "split": "validation"}
    assert source["sampling_params"]["temperature"] == 0.0
    assert [i["reference"] for i in load_items(settings, an_eval.id, run.id)] == ["2000", "2002", "2004", "2006"]
    assert run.per_testing_criteria_results == [{"testing_criteria": "exact", "passed": 0, "failed": 0}]


def test_templates_file_content_and_bad_sources(session, settings, an_eval):
    content = [{"item": {"q": "one"}}, {"item": {"q": "two"}}]
    run = create_run(
        session,
        settings,
        an_eval.id,
        model=TINY,
        data_source={
            "type": "completions",
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "Say {{item.q}}"}]},
            "source": {"type": "file_content", "content": content},
            "sampling_params": {"temperature": 0.5, "seed": 3},
        },
        metadata={"why": "test"},
    )
    assert run.n_items == 2 and run.data_source["sampling_params"]["seed"] == 3
    assert run.metadata_ == {"why": "test"}
    with pytest.raises(NotFound) as caught:
        create_run(session, settings, an_eval.id, model="no-such-model")
    assert caught.value.param == "model"
    bad = [
        ({"type": "jsonl"}, "data_source.type"),
        ({"source": {"type": "file_content", "content": []}}, "data_source.source.content"),
        ({"input_messages": {"type": "template", "template": "x"}}, "data_source.input_messages.template"),
        (
            {"input_messages": {"type": "item_reference", "item_reference": "item.nothing"}},
            "data_source.input_messages",
        ),
        ({"sampling_params": {"temperature": 3}}, "data_source.sampling_params.temperature"),
        (
            {"source": {"type": "dataset", "dataset_id": an_eval.dataset_id, "split": "test"}},
            "data_source.source.split",
        ),
    ]
    for data_source, param in bad:
        with pytest.raises(Invalid) as caught:
            create_run(session, settings, an_eval.id, model=TINY, data_source=data_source)
        assert caught.value.param == param, data_source
    with pytest.raises(Invalid):
        create_run(session, settings, an_eval.id, model=TINY, purpose="other")


def test_an_eval_without_dataset_needs_a_source(session, settings):
    from app.evals.evals import create_eval

    row = create_eval(session, settings, name="bare", testing_criteria=[])
    with pytest.raises(Invalid) as caught:
        create_run(session, settings, row.id, model=TINY)
    assert caught.value.param == "data_source.source"


def test_judges_must_exist_when_a_run_is_made(session, settings, dataset):
    from app.evals.evals import create_eval

    judge = {
        "type": "score_model",
        "name": "judge",
        "model": "no-such-judge",
        "input": [{"role": "user", "content": "{{sample.output_text}}"}],
    }
    row = create_eval(session, settings, name="judged", testing_criteria=[judge], dataset_id=dataset.id)
    with pytest.raises(NotFound) as caught:
        create_run(session, settings, row.id, model=TINY)
    assert caught.value.param == "testing_criteria[0].model"


def test_list_cancel_delete(session, settings, an_eval):
    runs = [create_run(session, settings, an_eval.id, model=TINY, data_source=short()) for _ in range(3)]
    rows, more = list_runs(session, an_eval.id, limit=2)
    assert [r.id for r in rows] == [r.id for r in runs[:2]] and more
    rows, more = list_runs(session, an_eval.id, after=rows[-1].id, order="asc")
    assert [r.id for r in rows] == [runs[2].id] and not more
    cancelled = cancel_run(session, an_eval.id, runs[0].id)
    assert cancelled.status == EvalRunStatus.canceled and cancelled.finished_at is not None
    with pytest.raises(Conflict):
        cancel_run(session, an_eval.id, runs[0].id)
    assert [r.id for r in list_runs(session, an_eval.id, status="canceled")[0]] == [runs[0].id]
    with pytest.raises(Invalid):
        list_runs(session, an_eval.id, status="bogus")

    claimed = queue.claim_next_run(session.get_bind(), "w1")
    assert claimed == runs[1].id
    session.expire_all()
    flagged = cancel_run(session, an_eval.id, runs[1].id)
    assert flagged.status == EvalRunStatus.in_progress and flagged.cancel_requested
    assert queue.heartbeat_run(session.get_bind(), runs[1].id, "w1") == (True, True)

    delete_run(session, settings, an_eval.id, runs[2].id)
    assert not items_path(settings, an_eval.id, runs[2].id).exists()
    with pytest.raises(NotFound):
        get_run(session, an_eval.id, runs[2].id)
    with pytest.raises(NotFound):
        get_run(session, "eval_other", runs[1].id)


def test_output_items_summary_and_progress(session: Session, settings, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY)
    statuses = ["pass", "fail", "pass", "error"]
    for index, status in enumerate(statuses):
        session.add(EvalRunItem(run_id=run.id, item_index=index, item={}, sample={}, results=[], status=status))
    run.n_done = 4
    run.result_counts = {"total": 4, "passed": 2, "failed": 1, "errored": 1}
    run.per_testing_criteria_results = [{"testing_criteria": "exact", "passed": 2, "failed": 1}]
    session.add(run)
    session.commit()
    rows, more = list_output_items(session, an_eval.id, run.id, limit=3)
    assert [r.item_index for r in rows] == [0, 1, 2] and more
    rows, _ = list_output_items(session, an_eval.id, run.id, status="pass", order="desc")
    assert [r.item_index for r in rows] == [2, 0]
    rows, more = list_output_items(session, an_eval.id, run.id, after=rows[0].id, order="desc")
    assert [r.item_index for r in rows] == [1, 0] and not more
    assert get_output_item(session, an_eval.id, run.id, rows[0].id).item_index == 1
    with pytest.raises(NotFound):
        get_output_item(session, an_eval.id, run.id, "outputitem_nope")
    summary = run_summary(run)
    assert (summary["passed"], summary["failed"], summary["errored"]) == (2, 1, 1)
    assert summary["pass_rate"] == pytest.approx(2 / 3)
    low, high = summary["interval"]
    assert 0 < low < 2 / 3 < high < 1
    assert summary["graders"][0]["errored"] == 1
    progress = run_progress(session, run.id)
    assert progress["status"] == "queued" and progress["n_done"] == 4 and progress["n_items"] == 4


def test_queue_claims_once_takes_over_stale_runs_and_releases(session, settings, an_eval):
    engine = session.get_bind()
    first = create_run(session, settings, an_eval.id, model=TINY, data_source=short())
    assert queue.claim_next_run(engine, "w1") == first.id
    assert queue.claim_next_run(engine, "w2") is None
    assert queue.take_over_stale_run(engine, "w2", timeout_seconds=60) is None
    assert queue.take_over_stale_run(engine, "w2", timeout_seconds=0) == first.id
    assert queue.heartbeat_run(engine, first.id, "w1") == (False, False)  # w1 lost it
    assert not queue.update_run_owned(engine, first.id, "w1", n_done=3)
    queue.release_run(engine, first.id, "w2")
    session.expire_all()
    row = get_run(session, an_eval.id, first.id)
    assert row.status == EvalRunStatus.queued and row.worker_id is None and row.attempts == 1
    assert queue.claim_next_run(engine, "w3") == first.id
    assert queue.finish_run(engine, first.id, "w3", EvalRunStatus.completed)
    assert not queue.finish_run(engine, first.id, "w3", EvalRunStatus.failed)
