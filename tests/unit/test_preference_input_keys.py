"""A preference line's input keeps its keys besides `messages` and `tools` (OpenAI's DPO input also takes e.g.
`parallel_tool_calls`): stored in the row's `extra` under INPUT_EXTRA, put back in the input by to_record() and the
export, through the bulk import, the API's add, duplication and the editor's form alike."""

from __future__ import annotations

import io
import json

from sqlmodel import select

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example, duplicate_example, record_from_form
from app.datasets.exporter import export_jsonl
from app.datasets.importer import import_jsonl
from app.datasets.validation.preference import pair_extra
from app.tables.dataset import INPUT_EXTRA, PREFERENCE, Example
from tests.integration.test_preference_editor import form_of

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
ANSWERS = {
    "preferred_output": [{"role": "assistant", "content": "Paris. Best wishes"}],
    "non_preferred_output": [{"role": "assistant", "content": "paris"}],
}
USER = [{"role": "user", "content": "Capital of France?"}]
LINES = [
    {"input": {"messages": USER, "tools": TOOLS, "parallel_tool_calls": False}, **ANSWERS},
    {"input": {"messages": USER, "parallel_tool_calls": True, "user_note": {"a": [1]}}, **ANSWERS, "meta": "x"},
    {"input": {"messages": USER, "tools": None}, **ANSWERS},  # an explicit null survives, as for chat examples
    {"input": {"messages": USER}, **ANSWERS, "metadata": {"k": 1}},  # nothing extra: no INPUT_EXTRA
]
BODY = "".join(json.dumps(line) + "\n" for line in LINES).encode()


def _examples(session, dataset_id: int) -> list[Example]:
    query = select(Example).where(Example.dataset_id == dataset_id).order_by(Example.position, Example.id)
    return list(session.exec(query))


def test_import_then_export_gives_the_same_lines_with_the_inputs_other_keys(session):
    dataset = create_dataset(session, "pairs", kind=PREFERENCE)
    result = import_jsonl(session, dataset.id, io.BytesIO(BODY), filename="pairs.jsonl")
    assert result.imported == 4 and result.rejected_count == 0
    assert b"".join(export_jsonl(session, dataset.id, only_valid=False)) == BODY
    rows = _examples(session, dataset.id)
    assert [e.to_record() for e in rows] == LINES
    assert rows[0].extra == {INPUT_EXTRA: {"parallel_tool_calls": False}} and rows[0].tools == TOOLS
    assert rows[1].extra == {"meta": "x", INPUT_EXTRA: {"parallel_tool_calls": True, "user_note": {"a": [1]}}}
    assert rows[3].extra == {"metadata": {"k": 1}}
    assert all(e.valid for e in rows)  # the keys are OpenAI's: no new problem


def test_the_api_add_duplication_and_the_editor_keep_them_too(session):
    dataset = create_dataset(session, "pairs", kind=PREFERENCE)
    added = [add_example(session, dataset.id, json.loads(json.dumps(line))) for line in LINES]
    assert [e.to_record() for e in added] == LINES
    copy = duplicate_example(session, added[1].id)
    assert copy.to_record() == LINES[1]
    for line in LINES:  # the editor shows them in its "other top-level fields" box and reads them back
        form = form_of(line)
        if "parallel_tool_calls" in line["input"]:
            shown = json.loads(form["extra"])[INPUT_EXTRA]["parallel_tool_calls"]
            assert shown == line["input"]["parallel_tool_calls"]
        assert record_from_form(form) == line


def test_a_top_level_field_of_that_name_that_is_not_an_object_stays_where_it_was(session):
    line = {"input": {"messages": USER}, **ANSWERS, INPUT_EXTRA: "mine"}
    assert pair_extra(line) == {INPUT_EXTRA: "mine"}
    dataset = create_dataset(session, "pairs", kind=PREFERENCE)
    assert add_example(session, dataset.id, line).to_record() == line
    body = (json.dumps(line) + "\n").encode()
    import_jsonl(session, dataset.id, io.BytesIO(body), filename="odd.jsonl")
    assert b"".join(export_jsonl(session, dataset.id, only_valid=False)).splitlines()[-1] + b"\n" == body
