"""The executor with the tiny local model: a run answers, grades and writes every item; resumes without redoing
items; honours cancel; a capture run makes a dataset; judge graders ask a local model (no network)."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from app.engine.chat_types import ChatParams
from app.evals import queue
from app.evals.answering import JUDGE_PARAMS, _collect
from app.evals.evals import create_eval
from app.evals.executor import run_eval
from app.evals.runs import cancel_run, create_run, get_run, list_output_items
from app.tables import Dataset, EvalRunItem, EvalRunStatus, Example
from tests.evals.conftest import STRING_CHECK, TINY, short

NEVER = {
    "type": "string_check",
    "name": "not-never",
    "input": "{{sample.output_text}}",
    "reference": "zz-never-said-zz",
    "operation": "ne",
}


def greedy(chat_engine, messages, max_tokens=6) -> str:
    """What the tiny model answers greedily."""
    from app.engine.chat_types import ModelRef

    params = ChatParams(temperature=0.0, top_p=1.0, max_tokens=max_tokens)
    return _collect(chat_engine.stream_chat(ModelRef(TINY, TINY), messages, params)).text


def claim_and_run(settings, engine, chat_engine, run_id, should_stop=lambda: False):
    assert queue.claim_next_run(engine, "w1") == run_id
    return run_eval(settings, engine, chat_engine, run_id, "w1", should_stop)


def count_items(engine, run_id) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).where(col(EvalRunItem.run_id) == run_id)).one()


def test_a_run_answers_grades_and_counts_every_item(session, settings, engine, chat_engine, dataset):
    first = {"item": {"q": "What is the capital of France?"}}
    expected = greedy(chat_engine, [{"role": "user", "content": first["item"]["q"]}])
    content = [
        {"item": {**first["item"], "expected": expected}},
        {"item": {"q": "Tell me a joke about cats.", "expected": "surely not this"}},
    ]
    exact = dict(STRING_CHECK, reference="{{item.expected}}")
    row = create_eval(session, settings, name="caps", testing_criteria=[exact, NEVER])
    data_source = {
        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
        "source": {"type": "file_content", "content": content},
        "sampling_params": {"max_completion_tokens": 6},
    }
    run = create_run(session, settings, row.id, model=TINY, data_source=data_source)
    assert claim_and_run(settings, engine, chat_engine, run.id) == EvalRunStatus.completed
    session.expire_all()
    done = get_run(session, row.id, run.id)
    assert done.status == EvalRunStatus.completed and done.n_done == 2 and done.finished_at is not None
    assert done.result_counts == {"total": 2, "errored": 0, "failed": 1, "passed": 1}
    assert done.per_testing_criteria_results == [
        {"testing_criteria": "exact", "passed": 1, "failed": 1},
        {"testing_criteria": "not-never", "passed": 2, "failed": 0},
    ]
    usage = done.per_model_usage[0]
    assert usage["model_name"] == TINY and usage["invocation_count"] == 2 and usage["completion_tokens"] > 0
    items, _ = list_output_items(session, row.id, run.id)
    assert [i.status for i in items] == ["pass", "fail"]
    sample = items[0].sample
    assert sample["input"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert sample["output"] == [{"role": "assistant", "content": expected}]
    assert sample["usage"]["total_tokens"] == sample["usage"]["prompt_tokens"] + sample["usage"]["completion_tokens"]
    assert items[0].results[0]["name"] == "exact" and items[0].results[0]["passed"] is True


def test_resume_after_an_interruption_skips_the_items_written(session, settings, engine, chat_engine, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY, data_source=short())
    stopped = claim_and_run(settings, engine, chat_engine, run.id, lambda: count_items(engine, run.id) >= 2)
    assert stopped is None and count_items(engine, run.id) == 2
    queue.release_run(engine, run.id, "w1")
    with Session(engine) as s:
        before = {r.item_index: r.id for r in s.exec(select(EvalRunItem).where(EvalRunItem.run_id == run.id))}
    assert claim_and_run(settings, engine, chat_engine, run.id) == EvalRunStatus.completed
    with Session(engine) as s:
        rows = list(s.exec(select(EvalRunItem).where(EvalRunItem.run_id == run.id)))
        done = get_run(s, an_eval.id, run.id)
    assert sorted(r.item_index for r in rows) == [0, 1, 2, 3]
    assert {r.item_index: r.id for r in rows if r.item_index in before} == before  # not written again
    assert done.n_done == 4 and done.result_counts["total"] == 4 and done.attempts == 1
    assert done.per_model_usage[0]["invocation_count"] == 4


def test_cancel_stops_a_run_in_progress(session, settings, engine, chat_engine, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY, data_source=short())

    def cancel_after_one() -> bool:
        if count_items(engine, run.id) >= 1:
            with Session(engine) as s:
                if not get_run(s, an_eval.id, run.id).cancel_requested:
                    cancel_run(s, an_eval.id, run.id)
        return False

    assert claim_and_run(settings, engine, chat_engine, run.id, cancel_after_one) == EvalRunStatus.canceled
    session.expire_all()
    done = get_run(session, an_eval.id, run.id)
    assert done.status == EvalRunStatus.canceled and 1 <= done.n_done < 4


def test_a_model_that_is_gone_fails_the_run(session, settings, engine, chat_engine, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY, data_source=short())
    run.model = "ft:gone"
    session.add(run)
    session.commit()
    assert claim_and_run(settings, engine, chat_engine, run.id) == EvalRunStatus.failed
    session.expire_all()
    assert get_run(session, an_eval.id, run.id).error["code"] == "model_not_found"


def test_a_lost_run_stops_without_writing(session, settings, engine, chat_engine, an_eval):
    run = create_run(session, settings, an_eval.id, model=TINY, data_source=short())
    assert queue.claim_next_run(engine, "w1") == run.id
    assert queue.take_over_stale_run(engine, "w2", timeout_seconds=0) == run.id
    assert run_eval(settings, engine, chat_engine, run.id, "w1", lambda: False) is None
    assert count_items(engine, run.id) == 0


def test_capture_makes_a_dataset_with_provenance(session, settings, engine, chat_engine, dataset):
    row = create_eval(session, settings, name="golden", testing_criteria=[], dataset_id=dataset.id)
    run = create_run(session, settings, row.id, model=TINY, data_source=short(), purpose="capture")
    assert claim_and_run(settings, engine, chat_engine, run.id) == EvalRunStatus.completed
    session.expire_all()
    done = get_run(session, row.id, run.id)
    assert done.output_dataset_id is not None
    made = session.get(Dataset, done.output_dataset_id)
    assert made.description.startswith(f"Answers of {TINY} to 4 prompts of dataset arithmetic (validation split)")
    assert f"(run {run.id}), captured " in made.description
    examples = list(session.exec(select(Example).where(Example.dataset_id == made.id).order_by(Example.position)))
    assert len(examples) == 4
    outputs = [i.sample["output"][0]["content"] for i in list_output_items(session, row.id, run.id)[0]]
    assert [e.messages[-1] for e in examples] == [{"role": "assistant", "content": o} for o in outputs]
    assert examples[0].messages[:-1] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 1000 plus 1000?"},
    ]


def test_judge_graders_ask_a_local_model(session, settings, engine, chat_engine):
    from app.engine.chat_types import ModelRef
    from app.evals.graders.model_graders import parse_score

    prompt = [{"role": "user", "content": "Rate {{item.q}} from 0 to 10."}]
    rendered = [{"role": "user", "content": "Rate hello world from 0 to 10."}]
    # A random model says a number only when it samples: find a seed whose reply holds one, as the grader will.
    for seed in range(50):
        params = ChatParams(temperature=1.0, top_p=1.0, max_tokens=40, seed=seed)
        reply = _collect(chat_engine.stream_chat(ModelRef(TINY, TINY), rendered, params)).text
        if (expected := parse_score(reply)) is not None:
            break
    else:
        raise AssertionError("no seed made the tiny model say a number")
    score = {
        "type": "score_model",
        "name": "score",
        "model": TINY,
        "input": prompt,
        "range": [-1e12, 1e12],
        "pass_threshold": expected,
        "sampling_params": {"temperature": 1.0, "seed": seed, "max_completions_tokens": 40},
    }
    label = {
        "type": "label_model",
        "name": "label",
        "model": TINY,
        "input": prompt,
        "labels": ["yes", "no"],
        "passing_labels": ["yes"],
    }
    row = create_eval(session, settings, name="judged", testing_criteria=[score, label])
    data_source = {
        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
        "source": {"type": "file_content", "content": [{"item": {"q": "hello world"}}]},
        "sampling_params": {"max_completion_tokens": 4},
    }
    run = create_run(session, settings, row.id, model=TINY, data_source=data_source)
    assert claim_and_run(settings, engine, chat_engine, run.id) == EvalRunStatus.completed
    session.expire_all()
    item = list_output_items(session, row.id, run.id)[0][0]
    by_name = {r["name"]: r for r in item.results}
    assert by_name["score"]["error"] is None and by_name["score"]["score"] == expected
    assert by_name["score"]["passed"] is True and by_name["score"]["details"]["reply"] == reply
    # The label judge decodes greedily; the tiny model's greedy reply (blank lines) names no label: an error.
    greedy_reply = greedy(chat_engine, rendered, JUDGE_PARAMS.max_tokens)
    assert by_name["label"]["error"] and by_name["label"]["details"]["reply"] == greedy_reply
    done = get_run(session, row.id, run.id)
    assert item.status == "error" and done.result_counts == {"total": 1, "errored": 1, "failed": 0, "passed": 0}
    assert done.per_testing_criteria_results == [
        {"testing_criteria": "score", "passed": 1, "failed": 0},
        {"testing_criteria": "label", "passed": 0, "failed": 0},
    ]
    (usage,) = done.per_model_usage  # the model answering once, then judging twice: one entry
    assert usage["model_name"] == TINY and usage["invocation_count"] == 3
