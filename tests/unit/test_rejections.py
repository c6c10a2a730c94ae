"""Rejected lines: every one counted and written to the files, only a bounded sample kept in memory."""

from __future__ import annotations

import gzip
import io
import json

from app.datasets import import_stream
from app.datasets.importer import import_jsonl, rejected_path, rejected_reasons
from app.datasets.rejections import SAMPLE, SAMPLE_BYTES, Rejections, message_for


def test_the_sample_is_bounded_in_lines_and_bytes_and_the_files_hold_everything(tmp_path):
    rejections = Rejections(tmp_path)
    for number in range(1, 2 * SAMPLE + 1):
        rejections.add(number, "invalid_json", b"y" * (3 * SAMPLE_BYTES), "Expecting value at column 1")
    rejections.close()
    assert rejections.count == 2 * SAMPLE and len(rejections.sample) == SAMPLE
    assert {len(r.data) for r in rejections.sample} == {SAMPLE_BYTES}
    assert rejections.sample[0].message == "The line is not valid JSON: Expecting value at column 1."
    reasons = gzip.decompress((tmp_path / f"{rejections.import_id}.reasons.jsonl.gz").read_bytes()).splitlines()
    assert [json.loads(t)["line"] for t in reasons] == list(range(1, 2 * SAMPLE + 1))
    raw = (tmp_path / f"{rejections.import_id}.rejected.txt").read_bytes()
    assert raw == (b"y" * (3 * SAMPLE_BYTES) + b"\n") * (2 * SAMPLE)


def test_without_a_folder_nothing_is_written_and_discard_removes_the_files(tmp_path):
    counted = Rejections(None)
    counted.add(1, "not_an_object", b"[]")
    assert counted.count == 1 and counted.import_id is None
    written = Rejections(tmp_path)
    written.add(1, "not_an_object", b"[]")
    written.discard()
    assert list(tmp_path.iterdir()) == []


def test_an_import_writes_every_rejected_line_in_file_order(session, settings, monkeypatch):
    from app.datasets.datasets import create_dataset

    monkeypatch.setattr(import_stream, "BATCH", 7)  # many batches, a long line between two of them
    dataset_id = create_dataset(session, "r").id
    good = json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]})
    lines = [good, "x", "[1]", good, "z" * (settings.max_line_bytes + 10), "{", good] * 5
    result = import_jsonl(session, dataset_id, io.BytesIO("\n".join(lines).encode()), settings=settings)
    expected = [n for n, text in enumerate(lines, 1) if text != good]
    assert result.imported == 15 and result.rejected_count == len(expected)
    listed = b"".join(rejected_reasons(settings, dataset_id, result.import_id)).splitlines()
    assert [json.loads(t)["line"] for t in listed] == expected
    raw = rejected_path(settings, dataset_id, result.import_id).read_bytes()
    assert raw == "".join(lines[n - 1] + "\n" for n in expected).encode()


def test_a_sentence_with_a_detail_is_punctuated_once():
    """Issue #17: "The line is not valid UTF-8 text.: byte 2 cannot be decoded."."""
    assert message_for("invalid_utf8", "byte 2 cannot be decoded") == (
        "The line is not valid UTF-8 text: byte 2 cannot be decoded."
    )
    assert message_for("invalid_json", "Expecting value.") == "The line is not valid JSON: Expecting value."
    assert message_for("invalid_utf8") == "The line is not valid UTF-8 text."
