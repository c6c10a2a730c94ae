"""Eval services: create (graders validated, default split and item schema), list, update, delete; items."""

from __future__ import annotations

import pytest

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example
from app.errors import Conflict, Invalid, NotFound
from app.evals.evals import create_eval, delete_eval, get_eval, list_evals, update_eval
from app.evals.items import (
    example_item,
    freeze_items,
    items_from_content,
    items_from_dataset,
    items_from_jsonl,
    load_items,
    run_folder,
)
from app.tables import Example
from tests.evals.conftest import STRING_CHECK


def test_a_dataset_eval_defaults_to_the_validation_split_and_infers_the_item_schema(session, settings, dataset):
    row = create_eval(session, settings, name="arith", testing_criteria=[STRING_CHECK], dataset_id=dataset.id)
    assert row.id.startswith("eval_") and row.split == "validation"
    config = row.data_source_config
    assert config["type"] == "custom" and config["include_sample_schema"] is True
    assert {"messages", "reference", "example_id"} <= set(config["item_schema"]["properties"])
    assert row.testing_criteria[0]["name"] == "exact"


def test_a_dataset_without_held_out_examples_is_evaluated_whole(session, settings):
    from tests.support.builders import make_dataset

    plain = make_dataset(session, n_train=3, name="plain")
    row = create_eval(session, settings, name=None, testing_criteria=[], dataset_id=plain.id)
    assert row.split == "all" and row.name == "plain eval"
    again = create_eval(session, settings, name="", testing_criteria=[], dataset_id=plain.id)
    assert again.name == "plain eval (2)"


def test_names_are_unique_and_graders_are_validated_with_their_path(session, settings, an_eval):
    with pytest.raises(Conflict):
        create_eval(session, settings, name="ARITH", testing_criteria=[STRING_CHECK])
    bad = dict(STRING_CHECK, operation="contains")
    with pytest.raises(Invalid) as caught:
        create_eval(session, settings, name="other", testing_criteria=[STRING_CHECK, bad])
    assert caught.value.param.startswith("testing_criteria[1]")
    with pytest.raises(Invalid) as caught:
        create_eval(session, settings, name="twice", testing_criteria=[STRING_CHECK, STRING_CHECK])
    assert caught.value.param == "testing_criteria[1].name"
    with pytest.raises(Invalid) as caught:
        create_eval(session, settings, name="m", testing_criteria=[], metadata={"k": 1})
    assert caught.value.param == "metadata"
    with pytest.raises(NotFound):
        create_eval(session, settings, name="x", testing_criteria=[], dataset_id=999)
    with pytest.raises(Invalid) as caught:
        create_eval(session, settings, name="y", testing_criteria=[], data_source_config={"type": "logs"})
    assert caught.value.param == "data_source_config.type"


def test_list_pages_by_cursor_in_both_orders(session, settings):
    made = [create_eval(session, settings, name=f"e{i}", testing_criteria=[]).id for i in range(5)]
    rows, more = list_evals(session, limit=2)
    assert [r.id for r in rows] == made[::-1][:2] and more
    rows, more = list_evals(session, after=rows[-1].id, limit=10)
    assert [r.id for r in rows] == made[::-1][2:] and not more
    rows, _ = list_evals(session, order="asc", limit=3)
    assert [r.id for r in rows] == made[:3]
    with pytest.raises(Invalid):
        list_evals(session, order_by="name")


def test_update_renames_and_replaces_metadata_delete_removes_files(session, settings, an_eval):
    other = create_eval(session, settings, name="other", testing_criteria=[])
    with pytest.raises(Conflict):
        update_eval(session, other.id, name="arith")
    row = update_eval(session, an_eval.id, name="renamed", metadata={"team": "a"})
    assert row.name == "renamed" and row.metadata_ == {"team": "a"}
    folder = run_folder(settings, an_eval.id, "evalrun_x")
    freeze_items(settings, an_eval.id, "evalrun_x", [{"a": 1}])
    assert folder.is_dir()
    delete_eval(session, settings, an_eval.id)
    with pytest.raises(NotFound):
        get_eval(session, an_eval.id)
    assert not folder.exists()


def test_dataset_items_stop_before_the_last_assistant_turn(session, dataset):
    items = items_from_dataset(session, dataset.id, "validation")
    assert len(items) == 4
    first = items[0]
    assert first["messages"][-1]["role"] == "user" and first["reference"] == "2000"
    assert isinstance(first["example_id"], int)
    assert len(items_from_dataset(session, dataset.id, "train")) == 12
    assert len(items_from_dataset(session, dataset.id, None)) == 16


def test_an_example_keeps_its_tools_and_extra_fields(session, settings):
    ds = create_dataset(session, "tools")
    record = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": [{"type": "text", "text": "two"}]},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "topic": "greeting",
    }
    example = add_example(session, ds.id, record)
    item = example_item(example)
    assert item is not None
    assert [m["content"] for m in item["messages"]] == ["hi", "one", "again"]
    assert item["reference"] == "two" and item["topic"] == "greeting" and item["tools"]
    row = create_eval(session, settings, name="t", testing_criteria=[], dataset_id=ds.id)
    assert row.data_source_config["item_schema"]["properties"]["topic"] == {"type": "string"}
    assert example_item(Example(dataset_id=ds.id, messages=[{"role": "assistant", "content": "x"}])) is None


def test_jsonl_items_name_every_bad_line():
    lines = ['{"item": {"q": 1}}', "", "not json", '{"q": 2}', '{"item": 3}', "[1]"]
    with pytest.raises(Invalid) as caught:
        items_from_jsonl(lines)
    assert caught.value.details == ["line 3: not JSON", "line 5: no item object", "line 6: no item object"]
    assert "line 3: not JSON" in caught.value.message
    assert items_from_jsonl([b'{"item": {"q": 1}}\n', b'{"q": 2}\n']) == [{"q": 1}, {"q": 2}]
    with pytest.raises(Invalid):
        items_from_jsonl(["", "  "])
    assert items_from_content([{"item": {"a": 1}}]) == [{"a": 1}]
    with pytest.raises(Invalid) as caught:
        items_from_content([{"item": {"a": 1}}, {"x": 1}])
    assert caught.value.param == "data_source.source.content[1]"


def test_frozen_items_read_back_the_same(settings):
    items = [{"q": "é", "n": [1, 2]}, {"q": "b"}]
    freeze_items(settings, "eval_a", "evalrun_b", items)
    assert load_items(settings, "eval_a", "evalrun_b") == items
    with pytest.raises(NotFound):
        load_items(settings, "eval_a", "evalrun_c")
