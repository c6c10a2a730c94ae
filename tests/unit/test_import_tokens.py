"""An import counts its examples' tokens as it goes: the stored counts are those the report computes from scratch,
and the first report after an import counts nothing."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select, text

from app.datasets import import_stream, import_tokens
from app.datasets.datasets import create_dataset
from app.datasets.importer import import_csv, import_jsonl
from app.datasets.validation import report_rows
from app.datasets.validation.report import ReportCache, build_report
from app.datasets.validation.tokens import count_openai
from app.tables.dataset import Example
from tests.conftest import FIXTURES

KEY = "o200k_base"  # gpt-4o-mini's, the report's default model
HELPER = import_tokens._Helper


def mixed_file() -> bytes:
    """Tools and calls, weights, system prompts, a legacy prompt/completion line, an invalid example, extra keys."""
    lines = []
    for name in ("daneel_shop_tools_validation_set", "weighted_multiturn_marv", "toy_chat_fine_tuning"):
        lines += (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    lines.append(json.dumps({"prompt": "2+2=", "completion": " 4", "metadata": {"k": "v"}}))
    lines.append(json.dumps({"messages": [{"role": "robot", "content": "beep"}]}))  # imported as invalid
    lines.append(json.dumps({"messages": [{"role": "user", "content": "Hi"}], "tools": None}))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def dataset(session):
    return create_dataset(session, "counted")


def stored_counts(session, dataset_id: int) -> list[tuple[dict | None, dict]]:
    """(cached counts, record) of each example, in order."""
    session.expire_all()
    examples = session.scalars(select(Example).where(Example.dataset_id == dataset_id).order_by(Example.position))
    return [((e.token_counts or {}).get(KEY), e.to_record()) for e in examples]


def assert_counts_are_the_reports(session, dataset_id: int) -> None:
    stored = stored_counts(session, dataset_id)
    assert stored and all(counts is not None for counts, _ in stored)
    from_scratch = count_openai([record for _, record in stored], KEY)
    assert [counts for counts, _ in stored] == [c.as_dict() for c in from_scratch]
    counted = build_report(session, dataset_id, "gpt-4o-mini", cache=ReportCache(), split="all").as_api()
    session.execute(text("UPDATE examples SET token_counts = NULL WHERE dataset_id = :d"), {"d": dataset_id})
    session.commit()
    recounted = build_report(session, dataset_id, "gpt-4o-mini", cache=ReportCache(), split="all").as_api()
    assert counted == recounted


def refuse_counting(monkeypatch) -> None:
    def no_counting(records, *args, **kwargs):
        raise AssertionError(f"the report counted {len(records)} examples after the import")

    monkeypatch.setattr(report_rows, "count_many", no_counting)


def test_an_import_stores_the_token_counts_the_report_would_compute(session, dataset, monkeypatch):
    monkeypatch.setattr(import_stream, "BATCH", 7)  # several blocks, counted apart
    result = import_jsonl(session, dataset.id, io.BytesIO(mixed_file()), filename="mixed.jsonl")
    assert result.imported == 101 and result.invalid_count >= 1
    assert_counts_are_the_reports(session, dataset.id)


def test_the_first_report_after_an_import_counts_nothing(session, dataset, monkeypatch):
    import_jsonl(session, dataset.id, io.BytesIO(mixed_file()), filename="mixed.jsonl")
    refuse_counting(monkeypatch)
    report = build_report(session, dataset.id, "gpt-4o-mini", cache=ReportCache(), split="all")
    assert report.tokens is not None and report.tokens.total > 0


def ready_helper(monkeypatch) -> None:
    """Each helper process is made ready before the import goes on (else a small file ends before it is), and the
    writer waits for each block's signatures (the product never does), so that tests see every block signed."""
    monkeypatch.setattr(import_tokens, "WAIT_FOR_SIGNATURES", True)

    def helper(*args):
        made = HELPER(*args)
        assert made.ready.wait(60)
        return made

    monkeypatch.setattr(import_tokens, "_Helper", helper)


def record_submits(monkeypatch) -> list[bool]:
    """The `count` flag of every block submitted to a helper process, in order (False: only to be signed)."""
    submitted: list[bool] = []
    real_submit = HELPER.submit

    def submit(helper, payload, count=True):
        submitted.append(count)
        return real_submit(helper, payload, count)

    monkeypatch.setattr(HELPER, "submit", submit)
    return submitted


def test_a_big_import_counts_in_a_helper_process_with_the_same_result(session, dataset, monkeypatch):
    monkeypatch.setattr(import_stream, "BATCH", 10)
    monkeypatch.setattr(import_tokens, "PROCESS_AFTER", 20)  # the first two blocks on the thread, then the helper
    ready_helper(monkeypatch)
    submitted = record_submits(monkeypatch)
    import_jsonl(session, dataset.id, io.BytesIO(mixed_file()), filename="mixed.jsonl")
    assert submitted.count(True) == 9  # every block after the first two
    assert submitted == [False, False, *[True] * 9]  # the first two (counted on the thread) only to be signed
    assert_counts_are_the_reports(session, dataset.id)


def test_a_helper_that_dies_leaves_its_rows_to_the_report(session, dataset, monkeypatch):
    monkeypatch.setattr(import_stream, "BATCH", 10)
    monkeypatch.setattr(import_tokens, "PROCESS_AFTER", 20)
    ready_helper(monkeypatch)
    real_submit = HELPER.submit

    def submit(helper, payload, *args):
        helper.process.kill()  # gone before it answers anything
        helper.process.wait()
        return real_submit(helper, payload, *args)

    monkeypatch.setattr(HELPER, "submit", submit)
    result = import_jsonl(session, dataset.id, io.BytesIO(mixed_file()), filename="mixed.jsonl")
    assert result.imported == 101
    stored = stored_counts(session, dataset.id)
    assert all(counts is not None for counts, _ in stored[:20])  # counted on the thread
    assert all(counts is None for counts, _ in stored[20:])  # the helper's share: left to the report
    full = build_report(session, dataset.id, "gpt-4o-mini", cache=ReportCache(), split="all")
    assert full.tokens is not None
    assert_counts_are_the_reports(session, dataset.id)


def test_a_csv_import_stores_its_counts_too(session, dataset, monkeypatch):
    data = b'system,user,assistant\n"Be brief.","Hi ""there""","Hello,\nfriend"\n,What is 2+2?,4\n'
    result = import_csv(session, dataset.id, io.BytesIO(data), filename="chat.csv")
    assert result.imported == 2
    refuse_counting(monkeypatch)
    report = build_report(session, dataset.id, "gpt-4o-mini", cache=ReportCache(), split="all")
    assert report.tokens is not None and report.tokens.total > 0
    monkeypatch.undo()
    assert_counts_are_the_reports(session, dataset.id)
