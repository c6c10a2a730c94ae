"""Eval runs with structured outputs and tools: OpenAI's sampling_params `response_format` and `tools` reach the
model, and items that bring their own tools (a function-calling dataset's) are answered with those tools offered."""

from __future__ import annotations

from app.evals import queue
from app.evals.evals import create_eval
from app.evals.executor import run_eval
from app.evals.runs import create_run, get_run, list_output_items
from app.tables import EvalRunStatus
from tests.evals.conftest import TINY

SCHEMA = {
    "type": "object",
    "properties": {"mood": {"type": "string", "enum": ["happy", "sad"]}, "score": {"type": "integer"}},
    "required": ["mood", "score"],
    "additionalProperties": False,
}
VALID_JSON = {"type": "json_check", "name": "valid", "input": "{{sample.output_text}}", "schema": SCHEMA}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
}


class SpyEngine:
    """The chat engine, noting the tools each batch was offered."""

    def __init__(self, inner):
        self.inner = inner
        self.offered: list = []

    def generate_batch(self, ref, conversations, params, **options):
        self.offered.append((len(conversations), params.tools))
        return self.inner.generate_batch(ref, conversations, params, **options)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _run(settings, engine, chat_engine, run_id):
    assert queue.claim_next_run(engine, "w1") == run_id
    return run_eval(settings, engine, chat_engine, run_id, "w1", lambda: False)


def test_a_strict_json_schema_in_sampling_params_makes_every_answer_valid(session, settings, engine, chat_engine):
    row = create_eval(session, settings, name="moods", testing_criteria=[VALID_JSON])
    content = [{"item": {"q": f"How do you feel about {thing}?"}} for thing in ("rain", "cats", "tax", "tea")]
    response_format = {"type": "json_schema", "json_schema": {"name": "mood", "schema": SCHEMA, "strict": True}}
    data_source = {
        "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
        "source": {"type": "file_content", "content": content},
        "sampling_params": {
            "temperature": 1.0,
            "seed": 3,
            "max_completion_tokens": 40,
            "response_format": response_format,
        },
    }
    run = create_run(session, settings, row.id, model=TINY, data_source=data_source)
    assert _run(settings, engine, chat_engine, run.id) == EvalRunStatus.completed
    session.expire_all()
    assert get_run(session, row.id, run.id).result_counts == {"total": 4, "errored": 0, "failed": 0, "passed": 4}


def test_items_with_tools_are_answered_with_their_tools_offered(session, settings, engine, chat_engine):
    row = create_eval(session, settings, name="orders", testing_criteria=[])
    content = [
        {"item": {"messages": [{"role": "user", "content": "Where is order 12?"}], "tools": [LOOKUP]}},
        {"item": {"messages": [{"role": "user", "content": "Hello there."}]}},
        {"item": {"messages": [{"role": "user", "content": "And order 13?"}], "tools": [LOOKUP]}},
    ]
    data_source = {
        "source": {"type": "file_content", "content": content},
        "sampling_params": {"max_completion_tokens": 8},
    }
    run = create_run(session, settings, row.id, model=TINY, data_source=data_source)
    spy = SpyEngine(chat_engine)
    assert _run(settings, engine, spy, run.id) == EvalRunStatus.completed
    assert sorted(spy.offered, key=lambda seen: seen[0]) == [(1, None), (2, [LOOKUP])]
    items, _ = list_output_items(session, row.id, run.id)
    assert len(items) == 3 and all(item.status == "pass" for item in items)
