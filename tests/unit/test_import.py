"""Importing JSONL and CSV: every line is either an example or a reported rejection, in one transaction."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from app.datasets import import_stream, importer
from app.datasets.datasets import create_dataset, dataset_counts
from app.datasets.importer import import_csv, import_jsonl
from app.errors import Invalid
from app.tables.dataset import Example
from tests.conftest import FIXTURES

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@pytest.fixture
def dataset(session):
    return create_dataset(session, "imports")


def run(session, dataset, data: bytes):
    return import_jsonl(session, dataset.id, io.BytesIO(data), filename="x.jsonl")


def stored(session, dataset):
    rows = session.execute(select(Example).where(Example.dataset_id == dataset.id).order_by(Example.position))
    return rows.scalars().all()


def test_import_reports_line_number_of_bad_json(session, dataset):
    result = run(session, dataset, line(GOOD) + b'{"messages": [\n' + line(GOOD))
    assert result.imported == 2
    assert [(r.line, r.code) for r in result.rejected] == [(2, "invalid_json")]
    assert result.rejected[0].raw == '{"messages": ['
    assert "not valid JSON" in result.rejected[0].message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b'{"prompt_only": 1}', "missing_messages"),
        (b'{"messages": "hi"}', "messages_not_a_list"),
        (b'{"prompt": 3, "completion": "x"}', "invalid_prompt_completion"),
        (b'{"messages": [], "x": "\xff\xfe"}', "invalid_utf8"),
    ],
)
def test_import_rejects_unusable_lines_with_a_stable_code(session, dataset, raw, code):
    result = run(session, dataset, line(GOOD) + raw + b"\n")
    assert result.imported == 1
    assert [(r.line, r.code) for r in result.rejected] == [(2, code)]
    assert result.rejected[0].data == raw
    assert result.rejected[0].message


def test_import_accepts_bom_crlf_blank_lines_and_missing_final_newline(session, dataset):
    data = b"\xef\xbb\xbf" + line(GOOD).replace(b"\n", b"\r\n") + b"\r\n   \n" + json.dumps(GOOD).encode()
    result = run(session, dataset, data)
    assert result.imported == 2 and result.rejected == []
    assert [e.messages for e in stored(session, dataset)] == [GOOD["messages"]] * 2


def test_import_converts_legacy_prompt_completion_to_user_and_assistant(session, dataset):
    result = run(session, dataset, line({"prompt": "2+2?", "completion": " 4"}))
    assert result.imported == 1
    (example,) = stored(session, dataset)
    assert example.messages == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def test_line_with_messages_but_invalid_content_is_imported_and_flagged(session, dataset):
    bad = {"messages": [{"role": "wizard", "content": "abracadabra"}]}
    result = run(session, dataset, line(bad) + line(GOOD))
    assert result.imported == 2 and result.rejected == []
    first, second = stored(session, dataset)
    assert first.valid is False and first.n_errors >= 1 and first.problems
    assert second.valid is True
    assert dataset_counts(session, dataset.id).invalid == 1


def test_other_top_level_keys_and_tools_are_kept_verbatim(session, dataset):
    record = {
        "messages": GOOD["messages"],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "parallel_tool_calls": False,
        "metadata": {"k": [1, 2]},
    }
    run(session, dataset, line(record))
    (example,) = stored(session, dataset)
    assert example.to_record() == record
    assert list(example.to_record()) == ["messages", "tools", "parallel_tool_calls", "metadata"]


def test_import_appends_after_existing_examples_in_file_order(session, dataset):
    run(session, dataset, line(GOOD))
    second = {"messages": [{"role": "user", "content": "again"}, {"role": "assistant", "content": "yes"}]}
    run(session, dataset, line(second) + line(GOOD))
    positions = [(e.position, e.messages[0]["content"]) for e in stored(session, dataset)]
    assert positions == [(0, "Hi"), (1, "again"), (2, "Hi")]


def test_a_crash_halfway_leaves_no_half_imported_dataset(session, dataset, monkeypatch):
    monkeypatch.setattr(import_stream, "BATCH", 10)
    data = line(GOOD) * 25 + b"{bad\n"

    def explode(lines, _bytes):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(import_stream, "PROGRESS_EVERY", 20)
    with pytest.raises(RuntimeError):
        import_jsonl(session, dataset.id, io.BytesIO(data), progress=explode)
    count = session.execute(select(func.count()).select_from(Example)).scalar_one()
    assert count == 0


def test_progress_is_reported_with_lines_and_bytes(session, dataset, monkeypatch):
    monkeypatch.setattr(import_stream, "PROGRESS_EVERY", 2)
    seen = []
    run_data = line(GOOD) * 5
    import_jsonl(session, dataset.id, io.BytesIO(run_data), progress=lambda n, b: seen.append((n, b)))
    assert seen[-1] == (5, len(run_data))
    assert seen[0] == (2, 2 * len(line(GOOD)))


@pytest.mark.parametrize(
    "name",
    [
        "toy_chat_fine_tuning.jsonl",
        "weighted_multiturn_marv.jsonl",
        "pirate_training_set.jsonl",
        "daneel_shop_tools_validation_set.jsonl",
    ],
)
def test_real_third_party_files_import_cleanly(session, dataset, name):
    path = FIXTURES / name
    expected = [json.loads(t) for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    with path.open("rb") as f:
        result = import_jsonl(session, dataset.id, f, filename=name)
    assert result.rejected == []
    assert result.imported == len(expected)
    assert [e.to_record() for e in stored(session, dataset)] == expected


def test_csv_import_builds_system_user_assistant_messages(session, dataset):
    data = ('\ufeffsystem,user,assistant\r\nBe brief.,"Hello, you",Hi\r\n,"two\nlines",ok\r\nonly,two\r\n').encode()
    result = import_csv(session, dataset.id, io.BytesIO(data))
    assert result.imported == 2
    assert [(r.line, r.code) for r in result.rejected] == [(5, "csv_bad_row")]
    first, second = stored(session, dataset)
    assert first.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, you"},
        {"role": "assistant", "content": "Hi"},
    ]
    assert second.messages == [{"role": "user", "content": "two\nlines"}, {"role": "assistant", "content": "ok"}]


def test_csv_without_the_expected_header_is_refused_clearly(session, dataset):
    with pytest.raises(Invalid, match="system, user, assistant"):
        import_csv(session, dataset.id, io.BytesIO(b"question,answer\nq,a\n"))


def test_rejected_lines_are_stored_byte_exact_for_download(settings, session, dataset):
    data = line(GOOD) + b"\xff oops\n" + b"[1]\n"
    result = import_jsonl(session, dataset.id, io.BytesIO(data), settings=settings)
    assert importer.rejected_path(settings, dataset.id, result.import_id).read_bytes() == b"\xff oops\n[1]\n"


def test_a_line_escaping_an_unpaired_surrogate_is_rejected_and_the_rest_imported(session, dataset):
    lone = b'{"messages": [{"role": "user", "content": "half an emoji \\ud83d"}]}'
    paired = {"messages": [{"role": "user", "content": "\U0001f600"}, {"role": "assistant", "content": "ok"}]}
    result = run(session, dataset, line(GOOD) + lone + b"\n" + line(paired))
    assert result.imported == 2
    assert [(r.line, r.code, r.data) for r in result.rejected] == [(2, "invalid_utf8", lone)]
    assert "surrogate" in result.rejected[0].message
    assert stored(session, dataset)[1].messages == paired["messages"]


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
        (b"PK\x03\x04\x14\x00\x06\x00", "a ZIP archive"),
        (b"\x1f\x8b\x08\x00", "a gzip-compressed file"),
        (bytes(range(256)) * 40, "a binary file"),
    ],
)
def test_a_file_that_is_not_text_is_refused_once_with_what_it_is(session, dataset, head, what):
    """Issue #17: a PNG renamed .jsonl gave 12,000 "rejected lines" of garbage."""
    with pytest.raises(Invalid) as caught:
        run(session, dataset, head + b"\n".join([b"\x00\xff garbage"] * 12000))
    assert caught.value.code == "not_text" and f"This is {what}" in str(caught.value)
    assert stored(session, dataset) == []


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_with_or_without_a_bom_is_read_as_utf16(session, dataset, codec):
    text = "".join(json.dumps({**GOOD, "n": i, "note": "café ✓"}, ensure_ascii=False) + "\r\n" for i in range(3000))
    data = text.encode(codec)
    result = import_jsonl(session, dataset.id, io.BytesIO(data), filename="x.jsonl")
    assert result.imported == 3000 and result.rejected_count == 0
    assert result.encoding.startswith("utf-16")
    assert stored(session, dataset)[0].messages == GOOD["messages"]


def test_the_summary_says_a_utf16_file_was_read_as_such(client, session, dataset):
    data = line(GOOD).decode().encode("utf-16")
    html = client.post(
        f"/datasets/{dataset.id}/import",
        files={"file": ("x.jsonl", data, "application/jsonl")},
        headers={"HX-Request": "true"},
    ).text
    assert "This file is UTF-16 text" in html and "Imported 1 example." in html


def test_short_text_files_still_import(session, dataset):
    assert run(session, dataset, line(GOOD)).imported == 1
    assert run(session, dataset, b"").imported == 0
    assert run(session, dataset, b"\xef\xbb\xbf" + line(GOOD)[:-1]).imported == 1


def test_the_result_lists_invalid_examples_by_file_line_and_counts_blank_lines(client, session, dataset):
    """Issue #17: file line 4 became "Example 3" and the summary said "Imported 7 examples"; blank lines vanished."""
    no_assistant = {"messages": [{"role": "user", "content": "Hi"}]}
    robot = {"messages": [{"role": "robot", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    data = line(GOOD) + b"\n" + line(GOOD) + line(no_assistant) + b"  \n" + line(robot) + b"not json\n" + line(GOOD)
    result = run(session, dataset, data)
    assert result.imported == 5 and result.rejected_count == 1 and result.blank_lines == 2
    assert result.invalid_count == 2
    assert [(n, code) for n, code, _ in result.invalid] == [
        (4, "example_missing_assistant_message"),
        (6, "unrecognized_role"),
    ]
    assert result.as_dict()["invalid"][1] == {
        "line": 6,
        "code": "unrecognized_role",
        "message": result.invalid[1][2],
    }
    html = client.post(
        f"/datasets/{dataset.id}/import",
        files={"file": ("x.jsonl", data, "application/jsonl")},
        headers={"HX-Request": "true"},
    ).text
    text = " ".join(html.split())
    assert "Imported 5 examples, 2 of them invalid." in text and "2 blank lines skipped." in text
    assert "<td>4</td>" in html and "<td>6</td>" in html and "<td>7</td>" in html  # invalid, invalid, rejected


def test_csv_blank_rows_and_invalid_rows_are_told_too(session, dataset):
    data = b"system,user,assistant\n,Hi,Hello\n,,\n,Hi,\n"
    result = import_csv(session, dataset.id, io.BytesIO(data), filename="x.csv")
    assert result.imported == 2 and result.blank_lines == 1
    assert [(n, code) for n, code, _ in result.invalid] == [(4, "missing_content")]
