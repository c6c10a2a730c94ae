"""Captured answers become a golden set: a new dataset whose assistant turns are the model's answers."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select

from app.datasets.datasets import dataset_counts
from app.migrate.golden import CapturedAnswer, save_captured_answers
from app.tables import Example
from tests.support.builders import make_dataset


def test_captured_answers_are_saved_as_a_new_dataset_with_provenance(session, settings):
    source = make_dataset(session, n_train=3, name="arithmetic")
    tools = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}]
    outputs = [
        CapturedAnswer([{"role": "user", "content": "What is 1 plus 1?"}], "2"),
        CapturedAnswer([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}], "4", tools),
        CapturedAnswer([{"role": "user", "content": "3+3?"}], "", error="The model failed while answering"),
    ]
    golden = save_captured_answers(session, source.id, "ft:gpt-4o-mini-2024-07-18:acme:x:1", outputs, settings=settings)
    assert golden.id != source.id and golden.name == "Golden set: ft:gpt-4o-mini-2024-07-18:acme:x:1 on arithmetic"
    assert golden.description == (
        f"Golden set: answers of ft:gpt-4o-mini-2024-07-18:acme:x:1 to the prompts of dataset arithmetic "
        f"(#{source.id}), captured on {date.today().isoformat()}. 1 prompt failed and was left out."
    )
    rows = session.exec(select(Example).where(Example.dataset_id == golden.id).order_by(col(Example.position))).all()
    assert [r.messages[-1] for r in rows] == [
        {"role": "assistant", "content": "2"},
        {"role": "assistant", "content": "4"},
    ]
    assert rows[1].messages[:2] == outputs[1].messages and rows[1].tools == tools
    assert dataset_counts(session, golden.id).examples == 2 and dataset_counts(session, golden.id).invalid == 0


def test_a_capture_run_is_named_in_the_provenance(session, settings):
    source = make_dataset(session, n_train=1)
    outputs = [CapturedAnswer([{"role": "user", "content": "hi"}], "hello")]
    golden = save_captured_answers(session, source.id, "tiny-llama", outputs, run_id="evalrun_abc")
    assert "(capture run evalrun_abc)" in golden.description and "left out" not in golden.description
