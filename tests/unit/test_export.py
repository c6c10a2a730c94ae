"""Exporting JSONL: stable key order, split and validity filters, and a lossless round trip."""

from __future__ import annotations

import io
import json

from app.datasets.datasets import create_dataset
from app.datasets.examples import add_example, bulk_set_split, list_examples
from app.datasets.exporter import export_jsonl
from app.datasets.importer import import_jsonl
from tests.conftest import FIXTURES


def exported(session, dataset_id, **kw) -> bytes:
    return b"".join(export_jsonl(session, dataset_id, **kw))


def test_exported_file_imported_again_gives_the_same_examples(session):
    source = create_dataset(session, "source")
    for name in (
        "toy_chat_fine_tuning.jsonl",
        "daneel_shop_tools_validation_set.jsonl",
        "weighted_multiturn_marv.jsonl",
    ):
        with (FIXTURES / name).open("rb") as f:
            import_jsonl(session, source.id, f)
    add_example(
        session,
        source.id,
        {"messages": [{"role": "user", "content": "é ✓"}], "tools": None, "parallel_tool_calls": True},
    )
    first = exported(session, source.id, only_valid=False)
    again = create_dataset(session, "again")
    import_jsonl(session, again.id, io.BytesIO(first))
    assert exported(session, again.id, only_valid=False) == first
    records = [json.loads(t) for t in first.decode().splitlines()]
    assert records[-1] == {"messages": [{"role": "user", "content": "é ✓"}], "tools": None, "parallel_tool_calls": True}


def test_export_yields_one_line_per_example_with_messages_key_first(session):
    dataset = create_dataset(session, "d")
    add_example(
        session,
        dataset.id,
        {
            "metadata": {"a": 1},
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "tools": [],
        },
    )
    lines = list(export_jsonl(session, dataset.id))
    assert len(lines) == 1 and lines[0].endswith(b"\n")
    assert list(json.loads(lines[0])) == ["messages", "tools", "metadata"]


def test_export_filters_by_split_and_leaves_out_invalid_examples_unless_asked(session):
    dataset = create_dataset(session, "d")
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    bad = {"messages": [{"role": "user", "content": "no answer"}]}
    a = add_example(session, dataset.id, good, split="train")
    add_example(session, dataset.id, good, split="validation")
    add_example(session, dataset.id, bad, split="train")
    assert len(list(export_jsonl(session, dataset.id))) == 2
    assert len(list(export_jsonl(session, dataset.id, only_valid=False))) == 3
    assert len(list(export_jsonl(session, dataset.id, split="train"))) == 1
    assert len(list(export_jsonl(session, dataset.id, split="train", only_valid=False))) == 2
    bulk_set_split(session, dataset.id, [a.id], "validation")
    assert len(list(export_jsonl(session, dataset.id, split="validation"))) == 2
    assert list_examples(session, dataset.id, split="train").total == 1
