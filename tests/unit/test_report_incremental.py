"""The Report brought up to date incrementally equals the Report computed from scratch, after every write path.

Each test warms the report's memory (memo and row snapshot) for every split and two encodings, changes the
dataset one way, and compares the next report with one computed after forgetting everything.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select
from sqlmodel import Session

from app.datasets import examples
from app.datasets.datasets import create_dataset, delete_dataset, duplicate_dataset, update_dataset
from app.datasets.importer import import_jsonl
from app.datasets.validation import report_rows
from app.datasets.validation.checks import cached_columns
from app.datasets.validation.report import ReportCache, build_report
from app.datasets.validation.report_rows import SnapshotStore
from app.tables import Example
from app.tables.db import make_engine
from app.tables.migrate import alembic_config
from tests.conftest import make_settings

MODELS = ("gpt-4o-mini", "gpt-3.5-turbo-0125")
SPLITS = ("train", "validation", "all")


def chat(i: int, system: str = "Answer briefly.") -> dict:
    """A valid example, different for each i."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": str(i + i)},
        ]
    }


def base_records() -> list[tuple[dict, str | None]]:
    """(record, split): valid ones, a duplicate, a leak into validation, an error, a warning, a tool call and one
    over gpt-3.5's context limit: every number of the report is something but zero."""
    tool_call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    records: list[tuple[dict, str | None]] = [(chat(i), None) for i in range(14)]
    records += [(chat(i), "validation") for i in (20, 21, 3)]
    records += [
        (chat(1), "train"),
        ({"messages": [{"role": "user", "content": "No answer here."}]}, None),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}, None),
        (
            {
                "messages": [
                    {"role": "user", "content": "Weather?"},
                    {"role": "assistant", "tool_calls": [tool_call]},
                    {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
                    {"role": "assistant", "content": "Sunny."},
                ],
                "tools": tools,
            },
            None,
        ),
        ({"messages": [{"role": "user", "content": "hello " * 17_000}, {"role": "assistant", "content": "ok"}]}, None),
    ]
    return records


def jsonl(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def make_base(session: Session, how: str) -> int:
    """The base dataset, written by the importer (rows it does not stamp) or by add_example (stamped rows)."""
    dataset = create_dataset(session, "base")
    if how == "imported":
        import_jsonl(session, dataset.id, io.BytesIO(jsonl(r for r, _ in base_records())))
        ids = list(session.scalars(select(Example.id).where(Example.dataset_id == dataset.id).order_by(Example.id)))
        for split in ("train", "validation"):  # the other rows keep no rev, as the importer writes them
            group = [i for i, (_, s) in zip(ids, base_records(), strict=True) if s == split]
            examples.bulk_set_split(session, dataset.id, group, split)
    else:
        for record, split in base_records():
            examples.add_example(session, dataset.id, record, split=split)
    return dataset.id


def observed(report) -> dict:
    """Everything a report shows."""
    return {
        **report.as_api(),
        "histogram": report.histogram,
        "tokens_lost": report.tokens_lost,
        "name": report.dataset_name,
    }


def every_report(session: Session, cache: ReportCache, dataset_id: int) -> dict:
    return {
        (m, s): observed(build_report(session, dataset_id, m, cache=cache, split=s)) for m in MODELS for s in SPLITS
    }


def ids_of(session: Session, dataset_id: int) -> list[int]:
    return list(session.scalars(select(Example.id).where(Example.dataset_id == dataset_id).order_by(Example.id)))


def edited(session: Session, example_id: int, text: str, **fields) -> None:
    example = examples.get_example(session, example_id)
    record = example.to_record()
    record["messages"] = [*record["messages"][:-1], {"role": "assistant", "content": text}]
    examples.update_example(session, example_id, record, example.version, **fields)


class World:
    """The databases a write path may touch: the base dataset, another dataset, a second engine (process)."""

    def __init__(self, session: Session, settings, cache: ReportCache, dataset_id: int, other_id: int):
        self.session, self.settings, self.cache = session, settings, cache
        self.dataset_id, self.other_id = dataset_id, other_id

    @property
    def ids(self) -> list[int]:
        return ids_of(self.session, self.dataset_id)


def _edit(w: World) -> int:
    edited(w.session, w.ids[2], "A much longer answer than before, with more tokens in it.")
    return w.dataset_id


def _edit_into_an_error(w: World) -> int:
    example = examples.get_example(w.session, w.ids[4])
    examples.update_example(w.session, example.id, {"messages": [{"role": "user", "content": "?"}]}, example.version)
    return w.dataset_id


def _edit_into_a_duplicate_and_move_to_validation(w: World) -> int:
    example = examples.get_example(w.session, w.ids[5])
    examples.update_example(w.session, example.id, chat(6), example.version, split="validation")
    return w.dataset_id


def _edit_twice(w: World) -> int:
    edited(w.session, w.ids[0], "first")
    edited(w.session, w.ids[0], "second, longer than the first")
    return w.dataset_id


def _add(w: World) -> int:
    examples.add_example(w.session, w.dataset_id, chat(99), split="validation")
    return w.dataset_id


def _duplicate(w: World) -> int:
    examples.duplicate_example(w.session, w.ids[1])
    return w.dataset_id


def _delete(w: World) -> int:
    examples.delete_example(w.session, w.ids[3])
    return w.dataset_id


def _delete_the_last_then_add(w: World) -> int:
    # SQLite gives the next row the id just freed (no AUTOINCREMENT): the same id with other content.
    last = w.ids[-1]
    examples.delete_example(w.session, last)
    examples.add_example(w.session, w.dataset_id, chat(77))
    return w.dataset_id


def _delete_the_last_then_import(w: World) -> int:
    examples.delete_example(w.session, w.ids[-1])
    import_jsonl(w.session, w.dataset_id, io.BytesIO(jsonl([chat(78)])))
    return w.dataset_id


def _bulk_delete(w: World) -> int:
    examples.bulk_delete(w.session, w.dataset_id, w.ids[:5])
    return w.dataset_id


def _bulk_set_split(w: World) -> int:
    examples.bulk_set_split(w.session, w.dataset_id, w.ids[:6], "validation")
    return w.dataset_id


def _bulk_copy_in(w: World) -> int:
    examples.bulk_copy(w.session, w.other_id, ids_of(w.session, w.other_id), w.dataset_id)
    return w.dataset_id


def _bulk_copy_out(w: World) -> int:
    examples.bulk_copy(w.session, w.dataset_id, w.ids[:3], w.other_id)
    return w.dataset_id


def _split_randomly(w: World) -> int:
    examples.split_randomly(w.session, w.dataset_id, 30, seed=4)
    return w.dataset_id


def _import(w: World) -> int:
    import_jsonl(w.session, w.dataset_id, io.BytesIO(jsonl([chat(50), chat(51), chat(1)])))
    return w.dataset_id


def _counts_cached_for_another_encoding(w: World) -> int:
    # The report writes token counts without a rev: the first report for o200k here, after cl100k's.
    w.cache.clear()
    build_report(w.session, w.dataset_id, "gpt-3.5-turbo-0125", cache=w.cache)
    return w.dataset_id


def _rename(w: World) -> int:
    update_dataset(w.session, w.dataset_id, name="renamed")
    return w.dataset_id


def _duplicate_dataset(w: World) -> int:
    return duplicate_dataset(w.session, w.dataset_id).id


def _dataset_replaced_under_the_same_id(w: World) -> int:
    # SQLite reuses the dataset's id and its examples' ids; more changes than the old one had push its rev past.
    delete_dataset(w.session, w.dataset_id)
    replacement = create_dataset(w.session, "replacement")
    for i in range(30):
        examples.add_example(w.session, replacement.id, chat(i, system="Another prompt."))
    return replacement.id


def _edited_by_another_process(w: World) -> int:
    engine = make_engine(w.settings)
    try:
        with Session(engine, expire_on_commit=False) as other:
            edited(other, ids_of(other, w.dataset_id)[7], "Written elsewhere.", split="validation")
            examples.delete_example(other, ids_of(other, w.dataset_id)[8])
    finally:
        engine.dispose()
    return w.dataset_id


# Every service that writes examples (or the dataset around them), as a person or another process would call it.
WRITES: dict[str, Callable[[World], int]] = {
    "edit": _edit,
    "edit_into_an_error": _edit_into_an_error,
    "edit_into_a_duplicate_and_move_to_validation": _edit_into_a_duplicate_and_move_to_validation,
    "edit_twice": _edit_twice,
    "add": _add,
    "duplicate": _duplicate,
    "delete": _delete,
    "delete_the_last_then_add": _delete_the_last_then_add,
    "delete_the_last_then_import": _delete_the_last_then_import,
    "bulk_delete": _bulk_delete,
    "bulk_set_split": _bulk_set_split,
    "bulk_copy_in": _bulk_copy_in,
    "bulk_copy_out": _bulk_copy_out,
    "split_randomly": _split_randomly,
    "import": _import,
    "counts_cached_for_another_encoding": _counts_cached_for_another_encoding,
    "rename": _rename,
    "duplicate_dataset": _duplicate_dataset,
    "dataset_replaced_under_the_same_id": _dataset_replaced_under_the_same_id,
    "edited_by_another_process": _edited_by_another_process,
}


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch):
    # Statistics updated row by row however many rows changed (a rebuild is what a report from scratch does).
    monkeypatch.setattr(report_rows, "REBUILD_SHARE", 0)


@pytest.fixture
def report_cache() -> ReportCache:
    """The report memory of one test, as the app factory builds one for an app."""
    return ReportCache()


@pytest.mark.parametrize("base", ["added", "imported"])
@pytest.mark.parametrize("write", sorted(WRITES))
def test_an_incremental_report_equals_one_from_scratch_after_each_write(session, settings, report_cache, write, base):
    other_id = create_dataset(session, "other").id  # created first: the base dataset holds the highest ids
    examples.add_example(session, other_id, chat(3))
    examples.add_example(session, other_id, chat(60))
    dataset_id = make_base(session, base)
    every_report(session, report_cache, dataset_id)  # memo and snapshots warm

    target = WRITES[write](World(session, settings, report_cache, dataset_id, other_id))

    incremental = every_report(session, report_cache, target)
    report_cache.clear()
    assert incremental == every_report(session, report_cache, target)


def test_an_edit_rereads_only_the_edited_example(session, report_cache, monkeypatch):
    dataset_id = make_base(session, "added")
    before = build_report(session, dataset_id, cache=report_cache)
    reads = []
    real_read = report_rows._read

    def spy(*args, **kwargs):
        rows = real_read(*args, **kwargs)
        reads.append((sorted(kwargs), len(rows)))
        return rows

    monkeypatch.setattr(report_rows, "_read", spy)
    edited(session, ids_of(session, dataset_id)[0], "A longer answer: " + "words " * 40)
    after = build_report(session, dataset_id, cache=report_cache)
    assert reads == [(["since"], 1)]
    assert after.tokens.total > before.tokens.total


def test_a_deleted_example_leaves_the_report_without_reading_the_rest(session, report_cache, monkeypatch):
    dataset_id = make_base(session, "added")
    build_report(session, dataset_id, cache=report_cache)
    reads = []
    real_read = report_rows._read
    monkeypatch.setattr(report_rows, "_read", lambda *a, **k: reads.append(k) or real_read(*a, **k))
    examples.delete_example(session, ids_of(session, dataset_id)[0])
    report = build_report(session, dataset_id, cache=report_cache)
    assert report.n_examples == len(base_records()) - 4  # 3 validation, 1 gone
    assert [sorted(k) for k in reads] == [["since"]]


def test_rows_written_without_a_rev_are_read_again_every_time(session, report_cache):
    dataset_id = make_base(session, "added")
    build_report(session, dataset_id, cache=report_cache)
    row = session.get(Example, ids_of(session, dataset_id)[0])
    row.split, row.rev = "validation", None  # as a writer that does not know about rev would leave it
    session.commit()
    examples.add_example(session, dataset_id, chat(90))  # any stamped change: the report is computed again
    incremental = observed(build_report(session, dataset_id, cache=report_cache))
    report_cache.clear()
    assert incremental == observed(build_report(session, dataset_id, cache=report_cache))
    assert session.scalar(select(func.count()).where(Example.dataset_id == dataset_id, Example.rev.is_(None))) == 1


def test_snapshots_are_kept_within_their_row_budget(session):
    cache = ReportCache(snapshots=SnapshotStore(max_rows=30))
    first, second = make_base(session, "added"), make_base(session, "added")
    build_report(session, first, cache=cache)
    build_report(session, second, cache=cache)
    assert [key[1] for key in cache.snapshots.kept_keys()] == [second]


def test_examples_written_before_migration_0004_are_unstamped_and_reported(tmp_path: Path, report_cache):
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    config = alembic_config(settings)
    command.upgrade(config, "0002")
    engine = make_engine(settings)
    with engine.begin() as connection:  # rows as the schema before 0004 held them
        connection.exec_driver_sql(
            "INSERT INTO datasets (id, name, description, created_at, updated_at) "
            "VALUES (1, 'old', '', '2026-01-01', '2026-01-01')"
        )
        for i in range(3):
            _check, _problems, digest, text = cached_columns(chat(i))
            connection.exec_driver_sql(
                "INSERT INTO examples (dataset_id, position, messages, note, version, valid, n_errors, n_warnings, "
                "problems, n_messages, content_hash, search_text, created_at, updated_at) "
                "VALUES (1, ?, ?, '', 1, 1, 0, 0, '[]', 3, ?, ?, '2026-01-01', '2026-01-01')",
                (i, json.dumps(chat(i)["messages"]), digest, text),
            )
    command.upgrade(config, "heads")
    with Session(engine, expire_on_commit=False) as session:
        assert session.scalar(select(func.count()).where(Example.rev.is_not(None))) == 0
        assert build_report(session, 1, cache=report_cache).n_examples == 3
        edited(session, ids_of(session, 1)[0], "A new answer, longer than the old one.")
        incremental = observed(build_report(session, 1, cache=report_cache))
        report_cache.clear()
        assert incremental == observed(build_report(session, 1, cache=report_cache))
    engine.dispose()
    command.downgrade(config, "0002")
