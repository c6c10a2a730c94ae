"""The importer's fast row preparation agrees with the ORM path (apply_check) column for column."""

from __future__ import annotations

import json

from app.datasets.import_rows import ROW_FIELDS, prepare_record
from app.datasets.validation import apply_check
from app.tables.dataset import Example


def test_prepared_rows_carry_the_same_validation_columns_as_apply_check():
    record = {"messages": [{"role": "user", "content": "Hi", "extra_key": 1}], "tools": None, "x": [1]}
    row = dict(zip(ROW_FIELDS, prepare_record(json.loads(json.dumps(record))), strict=True))
    example = Example(messages=record["messages"], tools=None, extra={"tools": None, "x": [1]})
    check = apply_check(example)
    assert json.loads(row["messages"]) == example.messages and json.loads(row["extra"]) == example.extra
    assert row["tools"] is None and row["token_counts"] is None
    assert json.loads(row["problems"]) == example.problems and row["valid"] is check.valid is False
    assert (row["n_errors"], row["n_warnings"], row["n_messages"]) == (check.n_errors, check.n_warnings, 1)
    assert (row["content_hash"], row["search_text"]) == (example.content_hash, example.search_text)
