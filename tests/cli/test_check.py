"""`tuneboard check`: the same codes and token totals as the dashboard's Report of the same file imported."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session

from app.datasets.datasets import create_dataset
from app.datasets.importer import import_jsonl
from app.datasets.validation.report import ReportCache, build_report
from tests.cli.harness import invoke, invoke_json
from tests.conftest import FIXTURES

SHARED_FILES = (
    "pirate_training_set.jsonl",
    "toy_chat_fine_tuning.jsonl",
    "weighted_multiturn_marv.jsonl",
    "daneel_shop_tools_validation_set.jsonl",
)


def chat(i: int, system: str = "Answer briefly.") -> dict:
    """A valid example, different for each i."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": str(i + i)},
        ]
    }


def write_jsonl(path: Path, lines: list) -> Path:
    """A JSONL file: dicts are dumped, strings written as they are."""
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def dashboard(session: Session, path: Path, model: str | None, validation: Path | None = None) -> dict:
    """The dashboard's report of `path` imported with the real importer, in the JSON shape `check` gives."""
    dataset = create_dataset(session, path.stem)
    imported = import_jsonl(session, dataset.id, io.BytesIO(path.read_bytes()))
    other = None
    if validation is not None:
        other = create_dataset(session, validation.stem).id
        import_jsonl(session, other, io.BytesIO(validation.read_bytes()))
    report = build_report(session, dataset.id, model, cache=ReportCache(), validation_dataset_id=other)
    api = report.as_api()
    del api["dataset_id"]
    return {
        "report": api | {"tokens_lost": report.tokens_lost},
        "rejected": [(r.line, r.code, r.message) for r in imported.rejected],
    }


@pytest.mark.parametrize("name", SHARED_FILES)
@pytest.mark.parametrize("model", [None, "gpt-3.5-turbo-0125", "gpt-4.1-2025-04-14"])
def test_check_reports_what_the_dashboard_reports_for_the_shared_datasets(session, name, model):
    path = FIXTURES / name
    status, out = invoke_json("check", path, *(["--model", model] if model else []))
    expected = dashboard(session, path, model)
    assert out["train"]["report"] == expected["report"]
    assert out["train"]["rejected"] == expected["rejected"] == []
    # Per line, the same codes as the examples the dashboard stores (each example counted once per code).
    per_example = Counter(code for line, code in {(p["line"], p["code"]) for p in out["train"]["problems"]})
    by_code = expected["report"]["errors"] | expected["report"]["warnings"]
    assert per_example == Counter({code: n for code, n in by_code.items() if code != "too_few_examples"})
    assert status == (1 if expected["report"]["errors"] else 0)


def test_token_totals_of_the_cookbook_toy_dataset(session):
    status, out = invoke_json("check", FIXTURES / "toy_chat_fine_tuning.jsonl", "--model", "gpt-3.5-turbo-0125")
    tokens, estimate = out["train"]["report"]["tokens"], out["train"]["report"]["estimate"]
    # The cookbook's own table (as tests/integration/test_report.py holds the dashboard to it).
    assert (tokens["min"], tokens["max"], tokens["mean"], tokens["median"]) == (26, 8032, 1648.4, 45)
    assert (estimate["billing_tokens"], estimate["n_epochs"], estimate["charged_tokens"]) == (8242, 20, 164_840)
    assert status == 0


def test_leakage_duplicates_and_rejected_lines_match_the_dashboard(session, tmp_path):
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [chat(i) for i in range(12)] + [chat(3), "{not json", {"prompt": "Hi", "completion": " Hello"}, [1, 2], ""],
    )
    validation = write_jsonl(tmp_path / "validation.jsonl", [chat(5), chat(100), chat(101), chat(100)])
    status, out = invoke_json("check", train, "--validation", validation)
    expected = dashboard(session, train, None, validation)
    assert out["train"]["report"] == expected["report"]
    assert out["train"]["report"]["warnings"]["train_validation_leakage"] == 1
    assert out["train"]["report"]["warnings"]["duplicate_example"] == 1
    assert [(r["line"], r["code"], r["message"]) for r in out["train"]["rejected"]] == expected["rejected"]
    assert [r["line"] for r in out["train"]["rejected"]] == [14, 16]
    problems = {(p["line"], p["code"]) for p in out["train"]["problems"]}
    assert {(6, "train_validation_leakage"), (13, "duplicate_example")} <= problems
    assert out["validation"]["report"]["warnings"] == {"duplicate_example": 1}
    # The validation file's own numbers are the dashboard's report of it alone (less the training-only warning).
    alone = dashboard(session, validation, None)["report"]
    alone["warnings"].pop("too_few_examples")
    for key in ("n_examples", "n_valid", "errors", "warnings", "tokens", "assistant_tokens", "messages", "estimate"):
        assert out["validation"]["report"][key] == alone[key]
    assert status == 1  # two lines are rejected


def test_exit_status_is_1_on_errors_and_on_warnings_with_strict(tmp_path):
    clean = write_jsonl(tmp_path / "clean.jsonl", [chat(i) for i in range(10)])
    assert invoke("check", clean).exit_code == 0
    assert invoke("check", clean, "--strict").exit_code == 0
    warned = write_jsonl(tmp_path / "warned.jsonl", [chat(i) for i in range(3)])  # too few examples
    assert invoke("check", warned).exit_code == 0
    assert invoke("check", warned, "--strict").exit_code == 1
    broken = write_jsonl(tmp_path / "broken.jsonl", [chat(1), {"messages": [{"role": "user", "content": "Hi"}]}])
    result = invoke("check", broken)
    assert result.exit_code == 1
    assert "example_missing_assistant_message" in result.stdout and "line 2" in result.stdout


def test_a_dpo_line_in_a_chat_file_is_rejected_and_a_dpo_file_is_checked(tmp_path):
    dpo = {
        "input": {"messages": [{"role": "user", "content": "Hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello!"}],
        "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
    }
    path = write_jsonl(tmp_path / "mixed.jsonl", [chat(1), dpo])
    status, out = invoke_json("check", path)
    (rejected,) = out["train"]["rejected"]
    assert (rejected["line"], rejected["code"]) == (2, "wrong_shape")
    assert "preference pair" in rejected["message"] and "chat examples" in rejected["message"]
    assert status == 1
    pairs = write_jsonl(tmp_path / "dpo.jsonl", [dpo] * 9 + [{**dpo, "preferred_output": []}])
    status, out = invoke_json("check", pairs)
    assert out["train"]["rejected"] == [] and status == 1
    assert [(p["line"], p["code"]) for p in out["train"]["problems"] if p["level"] == "error"] == [
        (10, "preference_missing_output")
    ]


def test_an_unknown_model_is_a_usage_error(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [chat(1)])
    result = invoke("check", path, "--model", "llama-9000")
    assert result.exit_code == 2 and "llama-9000" in result.output


def test_people_get_tables_and_an_estimate():
    result = invoke("check", FIXTURES / "pirate_training_set.jsonl")
    assert result.exit_code == 0
    for text in ("Statistics", "tokens", "Estimate:", "epochs", "No errors."):
        assert text in result.stdout
