"""Preference (DPO) files: the first example's shape makes the file's kind, a line of the other shape is rejected
with its number and why, a dataset of the other kind refuses the file, and export gives the same lines back."""

from __future__ import annotations

import io
import json

import pytest
from sqlmodel import select

from app.datasets.datasets import create_dataset, duplicate_dataset
from app.datasets.exporter import export_jsonl
from app.datasets.importer import import_csv, import_jsonl
from app.errors import Invalid
from app.tables.dataset import PREFERENCE, SUPERVISED, Dataset, Example
from tests.conftest import FIXTURES

SAMPLE = (FIXTURES / "dpo_signoff.jsonl").read_bytes()
CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
PAIR = {
    "input": {"messages": [{"role": "user", "content": "Hi"}]},
    "preferred_output": [{"role": "assistant", "content": "Hello! Best wishes"}],
    "non_preferred_output": [{"role": "assistant", "content": "hi"}],
}


def lines(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def kind_of(session, dataset_id: int) -> str:
    session.expire_all()
    return session.get(Dataset, dataset_id).kind


def exported(session, dataset_id: int, **kw) -> bytes:
    return b"".join(export_jsonl(session, dataset_id, **kw))


def test_a_preference_file_makes_an_empty_default_dataset_a_preference_one(session):
    dataset = create_dataset(session, "pairs")
    result = import_jsonl(session, dataset.id, io.BytesIO(SAMPLE), filename="dpo_signoff.jsonl")
    assert result.imported == 6 and result.rejected_count == 0 and result.invalid_count == 0
    assert kind_of(session, dataset.id) == PREFERENCE
    first = session.exec(select(Example).where(Example.dataset_id == dataset.id).order_by(Example.position)).first()
    assert first.source == "line 1 of dpo_signoff.jsonl" and first.is_preference
    assert first.to_record() == json.loads(SAMPLE.splitlines()[0])


def test_a_mixed_file_rejects_each_line_of_the_other_shape_with_its_number(session):
    dataset = create_dataset(session, "mixed")
    bad_pair = {**PAIR, "preferred_output": [{"role": "user", "content": "x"}]}
    data = lines(PAIR, CHAT, b"", PAIR, {"prompt": "a", "completion": "b"}, bad_pair, {"input": "text"})
    result = import_jsonl(session, dataset.id, io.BytesIO(data), filename="mixed.jsonl")
    assert result.imported == 3 and result.blank_lines == 1
    assert [(r.line, r.code) for r in result.rejected] == [
        (2, "wrong_shape"),
        (5, "wrong_shape"),
        (7, "input_not_a_conversation"),
    ]
    assert "chat example" in result.rejected[0].message and "preference pairs" in result.rejected[0].message
    assert result.invalid == [(6, "preference_output_not_assistant", result.invalid[0][2])]


def test_a_chat_file_whose_later_lines_are_pairs_stays_supervised(session):
    dataset = create_dataset(session, "chat")
    result = import_jsonl(session, dataset.id, io.BytesIO(lines(b"{oops", CHAT, PAIR)))
    assert [(r.line, r.code) for r in result.rejected] == [(1, "invalid_json"), (3, "wrong_shape")]
    assert kind_of(session, dataset.id) == SUPERVISED


def test_a_dataset_of_the_other_kind_refuses_the_whole_file_and_stays_as_it_was(session):
    chat = create_dataset(session, "chat")
    import_jsonl(session, chat.id, io.BytesIO(lines(CHAT)))
    with pytest.raises(Invalid) as refused:
        import_jsonl(session, chat.id, io.BytesIO(lines(PAIR)))
    assert refused.value.code == "dataset_kind_mismatch" and "line 1 of the file" in refused.value.message
    pairs = create_dataset(session, "pairs", kind=PREFERENCE)
    for data in (lines(b"", CHAT),):
        with pytest.raises(Invalid) as refused:
            import_jsonl(session, pairs.id, io.BytesIO(data))
        assert "line 2 of the file holds chat examples" in refused.value.message
    with pytest.raises(Invalid):
        import_csv(session, pairs.id, io.BytesIO(b"system,user,assistant\n,a,b\n"))
    session.expire_all()
    assert kind_of(session, pairs.id) == PREFERENCE and kind_of(session, chat.id) == SUPERVISED
    assert len(session.exec(select(Example).where(Example.dataset_id == pairs.id)).all()) == 0


def test_pairs_go_into_a_preference_dataset_that_has_some(session):
    dataset = create_dataset(session, "pairs", kind=PREFERENCE)
    import_jsonl(session, dataset.id, io.BytesIO(SAMPLE[: SAMPLE.index(b"\n") + 1]))
    assert import_jsonl(session, dataset.id, io.BytesIO(SAMPLE)).imported == 6


def test_export_gives_the_dpo_lines_back_and_they_import_again_the_same(session):
    source = create_dataset(session, "source")
    extra = {**PAIR, "input": {**PAIR["input"], "tools": None}, "metadata": {"from": "playground"}}
    import_jsonl(session, source.id, io.BytesIO(SAMPLE + lines(extra)))
    first = exported(session, source.id, only_valid=False)
    records = [json.loads(t) for t in first.decode().splitlines()]
    assert records[:6] == [json.loads(t) for t in SAMPLE.decode().splitlines()]
    assert list(records[0]) == ["input", "preferred_output", "non_preferred_output"]
    assert records[6]["metadata"] == {"from": "playground"}
    again = create_dataset(session, "again")
    import_jsonl(session, again.id, io.BytesIO(first))
    assert exported(session, again.id, only_valid=False) == first and kind_of(session, again.id) == PREFERENCE


def test_a_copy_keeps_the_kind_the_answers_and_where_each_example_came_from(session):
    source = create_dataset(session, "source")
    import_jsonl(session, source.id, io.BytesIO(SAMPLE), filename="dpo.jsonl")
    copy = duplicate_dataset(session, source.id)
    assert copy.kind == PREFERENCE
    assert exported(session, copy.id) == exported(session, source.id)
    rows = session.exec(select(Example).where(Example.dataset_id == copy.id).order_by(Example.position)).all()
    assert [(e.source_file, e.source_line) for e in rows[:2]] == [("dpo.jsonl", 1), ("dpo.jsonl", 2)]


def test_duplicate_pairs_are_found_on_the_whole_pair(session):
    dataset = create_dataset(session, "dups", kind=PREFERENCE)
    other = {**PAIR, "non_preferred_output": [{"role": "assistant", "content": "hey"}]}
    import_jsonl(session, dataset.id, io.BytesIO(lines(PAIR, PAIR, other)))
    hashes = [e.content_hash for e in session.exec(select(Example).order_by(Example.position)).all()]
    assert hashes[0] == hashes[1] != hashes[2]
