"""Large imports hand parsing and checking to a helper process: the result is exactly what one process makes."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from app.models.dataset import Example
from app.services import importer
from app.services.datasets import create_dataset
from app.services.import_rows import prepare_record
from app.services.validation import apply_check

pytestmark = pytest.mark.slow  # starts a Python subprocess

GOOD = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Café?"},
                     {"role": "assistant", "content": "Oui.", "weight": 1}]}


def mixed_file(n: int) -> bytes:
    """n lines: mostly good examples, with bad JSON, blank lines, invalid UTF-8 and odd shapes mixed in."""
    lines = []
    for i in range(n):
        if i % 97 == 5:
            lines.append(b'{"messages": [')
        elif i % 89 == 7:
            lines.append(b"")
        elif i % 83 == 3:
            lines.append(b"\xff bad")
        elif i % 11 == 0:
            lines.append(json.dumps({"messages": [{"role": "user", "content": f"only {i}"}], "tools": None,
                                     "metadata": {"i": i}}).encode())
        else:
            record = json.loads(json.dumps(GOOD))
            record["messages"][1]["content"] = f"Question {i}?"
            lines.append(json.dumps(record, ensure_ascii=i % 2 == 0).encode())
    return b"\n".join(lines) + b"\n"


def snapshot(session, dataset_id: int) -> list[tuple]:
    query = select(Example).where(Example.dataset_id == dataset_id).order_by(Example.position)
    return [(e.position, e.to_record(), e.valid, e.problems, e.n_messages, e.content_hash, e.search_text)
            for e in session.scalars(query)]


def test_a_large_import_through_the_helper_matches_an_import_in_one_process(session, monkeypatch):
    data = mixed_file(3000)
    monkeypatch.setattr(importer, "BATCH", 100)
    monkeypatch.setattr(importer, "PARALLEL_AFTER_LINES", 10**9)
    alone = create_dataset(session, "alone")
    expected = importer.import_jsonl(session, alone.id, io.BytesIO(data))
    monkeypatch.setattr(importer, "PARALLEL_AFTER_LINES", 250)
    helped = create_dataset(session, "helped")
    result = importer.import_jsonl(session, helped.id, io.BytesIO(data))
    assert result.imported == expected.imported > 2500
    assert [r.as_dict() for r in result.rejected] == [r.as_dict() for r in expected.rejected]
    assert {r.code for r in result.rejected} == {"invalid_json", "invalid_utf8"}
    assert snapshot(session, helped.id) == snapshot(session, alone.id)


def test_an_import_finishes_in_process_when_the_helper_dies(session, monkeypatch):
    monkeypatch.setattr(importer, "BATCH", 50)
    monkeypatch.setattr(importer, "PARALLEL_AFTER_LINES", 100)
    original = importer._Helper.submit
    calls = []

    def submit_then_die(self, lines, first):
        calls.append(first)
        if len(calls) == 3:
            self.process.kill()
        original(self, lines, first)

    monkeypatch.setattr(importer._Helper, "submit", submit_then_die)
    dataset = create_dataset(session, "dies")
    data = (json.dumps(GOOD) + "\n").encode() * 1000
    result = importer.import_jsonl(session, dataset.id, io.BytesIO(data))
    assert len(calls) >= 3
    assert result.imported == 1000 and not result.rejected
    assert [position for position, *_ in snapshot(session, dataset.id)] == list(range(1000))


def test_prepared_rows_carry_the_same_validation_columns_as_apply_check():
    record = {"messages": [{"role": "user", "content": "Hi", "extra_key": 1}], "tools": None, "x": [1]}
    row = dict(zip(importer.ROW_FIELDS, prepare_record(json.loads(json.dumps(record))), strict=True))
    example = Example(messages=record["messages"], tools=None, extra={"tools": None, "x": [1]})
    check = apply_check(example)
    assert json.loads(row["messages"]) == example.messages and json.loads(row["extra"]) == example.extra
    assert row["tools"] is None and row["token_counts"] is None
    assert json.loads(row["problems"]) == example.problems and row["valid"] is check.valid is False
    assert (row["n_errors"], row["n_warnings"], row["n_messages"]) == (check.n_errors, check.n_warnings, 1)
    assert (row["content_hash"], row["search_text"]) == (example.content_hash, example.search_text)
