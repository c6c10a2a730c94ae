"""Acceptance on the real SmolLM2-135M-Instruct: tuned on a small function-calling set, called with tools=[…] and
tool_choice auto, it answers with calls whose arguments match the schema, streams the same calls, and reads a
`tool` message to continue; and the base model's strict json_schema answers all validate."""

from __future__ import annotations

import json

import jsonschema
import pytest
from openai import OpenAI

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.integration.test_v1_tools import train_and_call


@pytest.mark.slow
@pytest.mark.smollm
def test_smollm2_tuned_on_function_calls_calls_the_function_on_its_own(tmp_path):
    settings = make_settings(tmp_path / "data", embedded_worker=True, worker_poll_seconds=0.1)
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as server:
        with OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as client:
            train_and_call(client, "SmolLM2-135M-Instruct", 12, {"n_epochs": 3, "batch_size": 4}, 900, "auto")


REVIEW = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "mixed"]},
        "stars": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "recommend": {"type": "boolean"},
        "topic": {"type": "string", "maxLength": 24},
    },
    "required": ["sentiment", "stars", "recommend", "topic"],
    "additionalProperties": False,
}


@pytest.mark.slow
@pytest.mark.smollm
def test_fifty_strict_json_schema_answers_of_base_smollm2_at_temperature_one_all_validate(tmp_path):
    settings = make_settings(tmp_path / "data")
    upgrade(settings)
    response_format = {"type": "json_schema", "json_schema": {"name": "review", "schema": REVIEW, "strict": True}}
    messages = [{"role": "user", "content": "Rate this review: 'The mug is lovely but arrived chipped.'"}]
    with LiveServer(create_app(settings), free_port()) as server:
        with OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as client:
            for seed in range(50):
                completion = client.chat.completions.create(
                    model="SmolLM2-135M-Instruct",
                    messages=messages,
                    temperature=1.0,
                    seed=seed,
                    max_tokens=80,
                    response_format=response_format,
                )
                content = completion.choices[0].message.content
                assert completion.choices[0].finish_reason == "stop", (seed, content)
                jsonschema.validate(json.loads(content), REVIEW)
