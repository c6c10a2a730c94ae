"""Runs of a remote model through the OpenAI provider, against the stand-in OpenAI server on 127.0.0.1: answers
come a few at a time, are graded and counted; a failing stream is that item's error; capture works the same."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.evals import queue
from app.evals.evals import create_eval
from app.evals.executor import run_eval
from app.evals.runs import create_run, get_run, list_output_items
from app.tables import Dataset, EvalRunStatus
from tests.conftest import LiveServer, free_port
from tests.evals.conftest import STRING_CHECK
from tests.support.fake_openai import KEY, FakeOpenAIState, make_app

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture(scope="module")
def fake_server():
    state = FakeOpenAIState()
    with LiveServer(make_app(state), free_port()) as server:
        server.state = state
        yield server


@pytest.fixture
def remote(settings, fake_server):
    """Settings that reach the stand-in server with its key; its state reset."""
    fake_server.state.__dict__.update(FakeOpenAIState().__dict__)
    return settings.model_copy(update={"openai_api_key": SecretStr(KEY), "openai_base_url": fake_server.url + "/v1"})


def items(n: int) -> dict:
    content = [{"item": {"q": f"question {i}", "expected": f"Hello from {MODEL}"}} for i in range(n)]
    return {
        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
        "source": {"type": "file_content", "content": content},
    }


def test_a_remote_model_answers_every_item(session, remote, engine, chat_engine, fake_server):
    exact = dict(STRING_CHECK, reference="{{item.expected}}")
    row = create_eval(session, remote, name="remote", testing_criteria=[exact])
    run = create_run(session, remote, row.id, model=MODEL, data_source=items(7))
    assert queue.claim_next_run(engine, "w") == run.id
    assert run_eval(remote, engine, chat_engine, run.id, "w", lambda: False) == EvalRunStatus.completed
    session.expire_all()
    done = get_run(session, row.id, run.id)
    assert done.result_counts == {"total": 7, "errored": 0, "failed": 0, "passed": 7}
    usage = done.per_model_usage[0]
    assert usage["model_name"] == MODEL and usage["invocation_count"] == 7 and usage["prompt_tokens"] == 35
    assert fake_server.state.requests.count("POST /v1/chat/completions") == 7
    outputs = [i.sample["output"][0]["content"] for i in list_output_items(session, row.id, run.id)[0]]
    assert outputs == [f"Hello from {MODEL}"] * 7


def test_a_failing_stream_is_that_items_error(session, remote, engine, chat_engine, fake_server):
    fake_server.state.chat_fails_after = 2
    row = create_eval(session, remote, name="flaky", testing_criteria=[STRING_CHECK])
    run = create_run(session, remote, row.id, model=MODEL, data_source=items(3))
    assert queue.claim_next_run(engine, "w") == run.id
    assert run_eval(remote, engine, chat_engine, run.id, "w", lambda: False) == EvalRunStatus.completed
    session.expire_all()
    done = get_run(session, row.id, run.id)
    assert done.result_counts == {"total": 3, "errored": 3, "failed": 0, "passed": 0}
    first = list_output_items(session, row.id, run.id)[0][0]
    assert first.status == "error" and first.sample["error"]["message"]


def test_capture_of_a_remote_model(session, remote, engine, chat_engine):
    row = create_eval(session, remote, name="golden", testing_criteria=[])
    run = create_run(session, remote, row.id, model=MODEL, data_source=items(3), purpose="capture")
    assert queue.claim_next_run(engine, "w") == run.id
    assert run_eval(remote, engine, chat_engine, run.id, "w", lambda: False) == EvalRunStatus.completed
    session.expire_all()
    made = session.get(Dataset, get_run(session, row.id, run.id).output_dataset_id)
    assert made.description.startswith(f"Answers of {MODEL} to 3 prompts of eval golden (run {run.id})")
