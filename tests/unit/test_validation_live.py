"""The editor's live check: format problems, token counts and the context-limit warning for a chosen model."""

from __future__ import annotations

import pytest

from app.datasets.validation.live import live_check
from app.errors import Invalid

LONG = {
    "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "hello " * 17_000},
        {"role": "assistant", "content": "ok"},
    ]
}


def test_an_example_over_the_models_context_is_warned_with_the_tokens_lost():
    result = live_check(LONG, "gpt-3.5-turbo-0125")
    problem = next(p for p in result.problems if p.code == "over_context_limit")
    lost = result.counts.total - 16_385
    assert problem.level == "warning" and f"{lost:,} tokens" in problem.message
    assert result.check.valid


def test_the_same_example_fits_a_model_with_a_longer_context():
    assert "over_context_limit" not in {p.code for p in live_check(LONG, "gpt-4o-mini").problems}


def test_live_check_answers_in_a_json_ready_shape():
    body = live_check({"messages": [{"role": "user", "content": "hi"}]}).as_dict()
    assert body["valid"] is False and body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["tokens"]["total"] > 0 and body["tokens"]["exact"] is True
    assert {p["code"] for p in body["problems"]} >= {"example_missing_assistant_message", "missing_system_message"}


def test_live_check_refuses_an_unknown_model():
    with pytest.raises(Invalid):
        live_check(LONG, "no-such-model")
