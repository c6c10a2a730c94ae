"""`tuneboard prepare`: each safe fix, what it leaves out, and the reproducible split (the dashboard's)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from sqlmodel import select

from app.datasets.datasets import create_dataset
from app.datasets.examples import split_randomly
from app.datasets.importer import import_jsonl
from app.datasets.prepare import prepare_file
from app.tables import Example
from tests.cli.harness import invoke, invoke_json
from tests.conftest import FIXTURES


def chat(i: int, system: str = "Answer briefly.") -> dict:
    """A valid example, different for each i."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": str(i + i)},
        ]
    }


def line(record: dict) -> bytes:
    """A JSONL line's bytes (without its end)."""
    return json.dumps(record).encode()


def read(path: Path) -> list[dict]:
    """The records of a JSONL file."""
    return [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines()]


def prepared(tmp_path: Path, data: bytes, *args: str, name: str = "data.jsonl") -> tuple[int, dict]:
    """Write `data` as a file and prepare it with no validation share: (exit status, the JSON answer)."""
    path = tmp_path / name
    path.write_bytes(data)
    return invoke_json("prepare", path, "--validation-fraction", "0", *args)


def test_bom_and_crlf_line_ends_are_removed(tmp_path):
    status, out = prepared(tmp_path, b"\xef\xbb\xbf" + line(chat(1)) + b"\r\n" + line(chat(2)) + b"\r\n")
    assert out["fixes"]["bom"]["count"] == 1
    assert out["fixes"]["crlf"]["lines"] == [1, 2]
    written = (tmp_path / "data_train.jsonl").read_bytes()
    assert not written.startswith(b"\xef\xbb\xbf") and b"\r" not in written
    assert read(tmp_path / "data_train.jsonl") == [chat(1), chat(2)]
    assert status == 0 and out["written"] == [str(tmp_path / "data_train.jsonl")]


def test_whitespace_around_message_text_is_trimmed(tmp_path):
    padded = chat(1)
    padded["messages"][0]["content"] = "  Answer briefly.\n"
    padded["messages"][2]["content"] = "2 "
    status, out = prepared(tmp_path, line(chat(0)) + b"\n" + line(padded) + b"\n")
    assert out["fixes"]["whitespace"]["lines"] == [2]
    assert read(tmp_path / "data_train.jsonl") == [chat(0), chat(1)]
    assert status == 0


def test_legacy_prompt_completion_becomes_chat(tmp_path):
    legacy = {"prompt": "What is 2 + 2?", "completion": " 4"}
    status, out = prepared(tmp_path, line(chat(1)) + b"\n" + line(legacy) + b"\n")
    assert out["fixes"]["prompt_completion"]["lines"] == [2]
    assert read(tmp_path / "data_train.jsonl")[1] == {
        "messages": [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]
    }
    assert status == 0


def test_csv_becomes_jsonl(tmp_path):
    data = b'system,user,assistant\nAnswer briefly.,Hi,Hello\n,"two\nlines",ok\nonly,two\n'
    status, out = prepared(tmp_path, data, name="data.csv")
    assert out["fixes"]["csv"]["count"] == 2 and out["unit"] == "row"
    assert read(tmp_path / "data_train.jsonl") == [
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
            ]
        },
        {"messages": [{"role": "user", "content": "two\nlines"}, {"role": "assistant", "content": "ok"}]},
    ]
    (rejected,) = out["rejected_lines"]
    assert (rejected["line"], rejected["code"]) == (5, "csv_bad_row")
    assert status == 1


def test_exact_duplicates_are_dropped_after_trimming(tmp_path):
    padded = chat(1)
    padded["messages"][1]["content"] += "  "
    reordered = {"messages": [{"content": m["content"], "role": m["role"]} for m in chat(2)["messages"]]}
    data = b"\n".join(line(r) for r in (chat(1), chat(2), padded, reordered, chat(3))) + b"\n"
    status, out = prepared(tmp_path, data)
    assert out["fixes"]["duplicate"]["lines"] == [3, 4]
    assert read(tmp_path / "data_train.jsonl") == [chat(1), chat(2), chat(3)]
    assert status == 0


def test_what_cannot_be_fixed_is_left_out_and_listed(tmp_path):
    no_answer = {"messages": [{"role": "user", "content": "Hi"}]}
    data = line(chat(1)) + b"\n{broken\n" + line(no_answer) + b"\n\n" + line(chat(2)) + b"\n"
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    result = invoke("prepare", path, "--validation-fraction", "0")
    assert result.exit_code == 1
    assert "line 2: invalid_json" in result.stdout
    assert "line 3: example_missing_assistant_message" in result.stdout
    assert read(tmp_path / "data_train.jsonl") == [chat(1), chat(2)]


def test_the_split_is_reproducible_and_is_the_dashboards(session, tmp_path):
    source = FIXTURES / "pirate_training_set.jsonl"
    path = tmp_path / "pirate.jsonl"
    path.write_bytes(source.read_bytes())
    first = tmp_path / "first"
    status, out = invoke_json("prepare", path, "--out", first, "--validation-fraction", "0.3", "--seed", "7")
    assert status == 0 and out["validation"] == round((out["train"] + out["validation"]) * 0.3)
    again = tmp_path / "again"
    invoke_json("prepare", path, "--out", again, "--validation-fraction", "0.3", "--seed", "7")
    for name in ("pirate_train.jsonl", "pirate_validation.jsonl"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    other = tmp_path / "other"
    invoke_json("prepare", path, "--out", other, "--validation-fraction", "0.3", "--seed", "8")
    assert (other / "pirate_validation.jsonl").read_bytes() != (first / "pirate_validation.jsonl").read_bytes()

    # The dashboard's "Split randomly" with the same share and seed picks the same examples (the file has no
    # duplicates; prepare trims its trailing spaces, so the examples are told apart by their questions).
    assert "duplicate" not in out["fixes"]
    dataset = create_dataset(session, "pirate")
    import_jsonl(session, dataset.id, io.BytesIO(source.read_bytes()))
    split_randomly(session, dataset.id, 30, 7)
    examples = session.exec(select(Example).where(Example.dataset_id == dataset.id).order_by(Example.position)).all()
    picked = [e.messages[1]["content"].strip() for e in examples if e.split == "validation"]
    assert [r["messages"][1]["content"] for r in read(first / "pirate_validation.jsonl")] == picked


def test_a_preference_file_is_prepared_with_its_pairs_kept_whole(tmp_path):
    source = tmp_path / "pairs.jsonl"
    lines = (FIXTURES / "dpo_signoff.jsonl").read_text().splitlines()
    source.write_text("\n".join([*lines, lines[0]]) + "\n")
    result = prepare_file(source, validation_percent=20)
    assert result.fixes["duplicate"] == 1 and result.unfixable == [] and result.rejected == []
    kept = result.train + result.validation
    assert len(kept) == 6 and all(set(r) == {"input", "preferred_output", "non_preferred_output"} for r in kept)
