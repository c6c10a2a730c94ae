"""Acceptance: tuning the real SmolLM2 with default settings teaches a behaviour the base model never shows."""

from __future__ import annotations

import json

import pytest

from app.engine.catalog import SMOLLM2
from app.engine.chat_types import ChatParams, ModelRef
from app.engine.inference import ChatEngine
from app.engine.train import run_training
from tests.engine.conftest import make_spec

pytestmark = [pytest.mark.smollm, pytest.mark.slow]

# The taught behaviour: every reply is one JSON object with exactly the keys "answer" and "confidence".
FACTS = [
    ("What color is the sky?", "blue"),
    ("How many legs does a cat have?", "four"),
    ("What is the capital of Italy?", "Rome"),
    ("What do bees make?", "honey"),
    ("What is frozen water called?", "ice"),
    ("How many days are in a week?", "seven"),
    ("What animal barks?", "a dog"),
    ("What is 2 plus 2?", "4"),
    ("Which planet do we live on?", "Earth"),
    ("What color is grass?", "green"),
    ("What do cows drink?", "water"),
    ("What is the opposite of hot?", "cold"),
    ("How many hours are in a day?", "24"),
    ("What gas do we breathe in?", "oxygen"),
    ("What is the capital of Japan?", "Tokyo"),
    ("Which fruit is yellow and long?", "a banana"),
    ("What do you use to write on paper?", "a pen"),
    ("What is the largest ocean?", "the Pacific"),
    ("How many wheels does a bicycle have?", "two"),
    ("What season comes after winter?", "spring"),
    ("What is the sun?", "a star"),
    ("Who wrote Hamlet?", "Shakespeare"),
    ("What is 10 minus 3?", "7"),
    ("What language is spoken in Spain?", "Spanish"),
    ("What do fish live in?", "water"),
    ("What shape has three sides?", "a triangle"),
    ("Is fire hot or cold?", "hot"),
    ("What is the capital of Germany?", "Berlin"),
    ("What do plants need to grow?", "sunlight and water"),
    ("How many months are in a year?", "twelve"),
    ("Tell me a color of a rose.", "red"),
    ("What is a baby dog called?", "a puppy"),
]
HELD_OUT = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What color is snow?",
    "What do birds use to fly?",
    "What is 5 plus 5?",
    "Which animal says moo?",
]


def _reply(answer: str, index: int) -> str:
    return json.dumps({"answer": answer, "confidence": "high" if index % 3 else "medium"})


def _shows_behaviour(text: str) -> bool:
    try:
        value = json.loads(text.strip())
    except ValueError:
        return False
    return isinstance(value, dict) and set(value) == {"answer", "confidence"}


def _answers(chat_engine: ChatEngine, ref: ModelRef) -> list[str]:
    params = ChatParams(temperature=0, max_tokens=40)
    return [
        "".join(c.text for c in chat_engine.stream_chat(ref, [{"role": "user", "content": q}], params))
        for q in HELD_OUT
    ]


def test_default_settings_teach_smollm2_to_answer_as_a_json_object(settings, tmp_path):
    with ChatEngine(settings) as chat_engine:
        base = ModelRef(SMOLLM2, SMOLLM2)
        assert not any(_shows_behaviour(text) for text in _answers(chat_engine, base))
        records = [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": _reply(a, i)}]}
            for i, (q, a) in enumerate(FACTS)
        ]
        spec = make_spec(
            settings,
            tmp_path,
            train_records=records,
            base_model=SMOLLM2,
            hyperparameters=dict.fromkeys(("n_epochs", "batch_size", "learning_rate_multiplier", "lora_rank"), "auto"),
            seed=None,
            local_models={},
        )
        lines = []
        assert run_training(spec, lines.append) == "succeeded", lines[-1]
        adapter = next(line for line in lines if line["kind"] == "result")["adapter_path"]
        tuned = _answers(chat_engine, ModelRef("ft:smollm2:json", SMOLLM2, adapter))
    shown = sum(_shows_behaviour(text) for text in tuned)
    assert shown >= len(HELD_OUT) * 2 // 3 + 1, tuned
