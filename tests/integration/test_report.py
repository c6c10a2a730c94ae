"""The dataset Report (page and /api) and the launch check, on a real migrated SQLite database."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.datasets.importer import import_jsonl
from app.datasets.validation import apply_check
from app.datasets.validation.launch import launch_check
from app.datasets.validation.report import ReportCache, build_report, example_ids_with_problem, stored_problem_clause
from app.tables import Dataset, Example
from tests.conftest import FIXTURES, SHARED


def shared(name: str) -> bytes:
    """A real third-party dataset: the datasets engineer's fixture copy, else the shared original."""
    path = FIXTURES / name if (FIXTURES / name).exists() else SHARED / "datasets" / name
    return path.read_bytes()


def chat(i: int, system: str = "Answer briefly.") -> dict:
    """A valid example, different for each i."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"What is {i} + {i}?"},
            {"role": "assistant", "content": str(i + i)},
        ]
    }


def add_dataset(session: Session, records, name: str = "set", splits=None) -> int:
    """A dataset holding `records` (rows inserted directly, checked with apply_check)."""
    dataset = Dataset(name=name)
    session.add(dataset)
    session.commit()
    for position, record in enumerate(records):
        example = Example(
            dataset_id=dataset.id,
            position=position,
            messages=record["messages"],
            tools=record.get("tools"),
            split=(splits or {}).get(position),
        )
        apply_check(example)
        session.add(example)
    session.commit()
    return dataset.id


def touch(session: Session, dataset_id: int) -> None:
    """What every examples service does after a change."""
    session.get(Dataset, dataset_id).updated_at = datetime.now(UTC)
    session.commit()


@pytest.fixture
def report_cache() -> ReportCache:
    """The report memory of one test, as the app factory builds one for an app."""
    return ReportCache()


@pytest.fixture
def toy(session) -> int:
    """The cookbook's toy dataset."""
    return add_dataset(session, [json.loads(line) for line in shared("toy_chat_fine_tuning.jsonl").splitlines()], "toy")


def test_toy_dataset_report_for_gpt35_reproduces_the_cookbook_table(api, toy):
    body = api.get(f"/api/datasets/{toy}/report", params={"model": "gpt-3.5-turbo-0125"}).json()
    tokens = body["tokens"]
    assert (tokens["min"], tokens["max"], tokens["mean"], tokens["median"]) == (26, 8032, 1648.4, 45)
    estimate = body["estimate"]
    assert (estimate["billing_tokens"], estimate["n_epochs"], estimate["charged_tokens"]) == (8242, 20, 164_840)
    assert estimate["model"] == "gpt-3.5-turbo-0125"
    assert body["errors"] == {}
    assert (body["n_examples"], body["n_valid"]) == (5, 5)
    assert body["warnings"]["missing_system_message"] == 1 and body["warnings"]["missing_user_message"] == 1
    assert set(body) >= {
        "n_examples",
        "n_valid",
        "errors",
        "warnings",
        "tokens",
        "assistant_tokens",
        "messages",
        "estimate",
    }
    assert set(body["messages"]) == {"total", "min", "max", "mean", "median", "p5", "p95"}


def test_report_page_shows_problems_statistics_estimate_and_an_svg_histogram(client, toy):
    page = client.get(f"/datasets/{toy}/report?model=gpt-3.5-turbo-0125")
    assert page.status_code == 200 and "<html" in page.text
    assert f'href="/datasets/{toy}?problem=missing_system_message"' in page.text
    assert "164,840" in page.text and "8,242" in page.text and ">20<" in page.text
    assert "<svg" in page.text and "tokens per example (cl100k_base)" in page.text and ">examples</text>" in page.text
    assert '<option value="gpt-3.5-turbo-0125" selected>' in page.text


def test_the_model_picker_gets_only_the_report_fragment(client, toy):
    fragment = client.get(f"/datasets/{toy}/report?model=gpt-4o-mini", headers={"HX-Request": "true"})
    assert '<section id="report"' in fragment.text and "<html" not in fragment.text
    assert "o200k_base" in fragment.text


def test_user_text_in_the_report_is_escaped(client, session):
    dataset_id = add_dataset(session, [chat(1)], name="<script>alert(1)</script>")
    page = client.get(f"/datasets/{dataset_id}/report").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_token_counts_are_cached_per_example_and_recomputed_only_after_a_change(api, session, toy):
    api.get(f"/api/datasets/{toy}/report", params={"model": "gpt-3.5-turbo-0125"})
    session.expire_all()
    examples = session.exec(select(Example).where(Example.dataset_id == toy).order_by(Example.position)).all()
    assert [e.token_counts["cl100k_base"]["total"] for e in examples] == [45, 111, 26, 28, 8032]
    # A cached count is trusted as is (proof the report reads the cache instead of recounting)...
    examples[0].token_counts = {"cl100k_base": {"total": 7, "assistant": 1, "trained": 1}}
    # ...and an edited example is recounted, since apply_check clears its cache.
    examples[1].messages = [*examples[1].messages, {"role": "user", "content": "One more question?"}]
    apply_check(examples[1])
    session.commit()
    touch(session, toy)
    tokens = api.get(f"/api/datasets/{toy}/report", params={"model": "gpt-3.5-turbo-0125"}).json()["tokens"]
    assert tokens["min"] == 7
    session.expire_all()
    assert session.get(Example, examples[1].id).token_counts["cl100k_base"]["total"] > 111


def test_counts_for_two_encodings_are_cached_side_by_side(session, toy, report_cache):
    build_report(session, toy, "gpt-3.5-turbo-0125", cache=report_cache)
    build_report(session, toy, "gpt-4o-mini", cache=report_cache)
    session.expire_all()
    cached = session.exec(select(Example).where(Example.dataset_id == toy)).first().token_counts
    assert set(cached) == {"cl100k_base", "o200k_base"}


def test_duplicates_are_counted_once_per_extra_copy(session, report_cache):
    clean = build_report(session, add_dataset(session, [chat(i) for i in range(10)]), cache=report_cache)
    assert "duplicate_example" not in clean.warnings
    dataset_id = add_dataset(session, [chat(1), chat(1), chat(1), *[chat(i) for i in range(2, 12)]])
    assert build_report(session, dataset_id, cache=report_cache).warnings["duplicate_example"] == 2
    assert len(example_ids_with_problem(session, dataset_id, "duplicate_example", cache=report_cache)) == 2


def test_the_same_example_in_train_and_validation_is_leakage(session, report_cache):
    separate = add_dataset(session, [chat(i) for i in range(12)], splits={10: "validation", 11: "validation"})
    assert "train_validation_leakage" not in build_report(session, separate, cache=report_cache).warnings
    leaky = add_dataset(session, [chat(i) for i in range(11)] + [chat(3)], splits={11: "validation"})
    assert build_report(session, leaky, cache=report_cache).warnings["train_validation_leakage"] == 1
    assert example_ids_with_problem(session, leaky, "train_validation_leakage", cache=report_cache) != []


def test_leakage_into_a_separate_validation_dataset_is_found(session, report_cache):
    train = add_dataset(session, [chat(i) for i in range(12)])
    other = add_dataset(session, [chat(100), chat(200)])
    overlapping = add_dataset(session, [chat(5)])
    separate = build_report(session, train, validation_dataset_id=other, cache=report_cache)
    assert "train_validation_leakage" not in separate.warnings
    leaky = build_report(session, train, validation_dataset_id=overlapping, cache=report_cache)
    assert leaky.warnings["train_validation_leakage"] == 1


def test_fewer_than_ten_valid_training_examples_is_flagged(session, report_cache):
    nine = build_report(session, add_dataset(session, [chat(i) for i in range(9)]), cache=report_cache)
    assert nine.warnings["too_few_examples"] == 1
    ten = build_report(session, add_dataset(session, [chat(i) for i in range(10)]), cache=report_cache)
    assert "too_few_examples" not in ten.warnings


def test_examples_over_the_context_limit_are_flagged_with_the_tokens_lost(session, report_cache):
    long = {"messages": [{"role": "user", "content": "hello " * 17_000}, {"role": "assistant", "content": "ok"}]}
    dataset_id = add_dataset(session, [long, *[chat(i) for i in range(10)]])
    report = build_report(session, dataset_id, "gpt-3.5-turbo-0125", cache=report_cache)
    assert report.warnings["over_context_limit"] == 1
    assert report.tokens_lost == report.tokens.max - 16_385 > 0
    assert "over_context_limit" not in build_report(session, dataset_id, "gpt-4o-mini", cache=report_cache).warnings


def test_statistics_and_estimate_cover_only_valid_examples(session, report_cache):
    broken = {"messages": [{"role": "user", "content": "no answer " * 50}]}
    dataset_id = add_dataset(session, [broken, *[chat(i) for i in range(10)]])
    report = build_report(session, dataset_id, cache=report_cache)
    assert (report.n_examples, report.n_valid) == (11, 10)
    assert report.errors == {"example_missing_assistant_message": 1}
    assert report.estimate.billing_tokens == report.tokens.total
    assert report.tokens.max < 50


def test_launch_refuses_too_few_examples_and_errors_in_the_reports_words(session, toy):
    check = launch_check(session, toy, "gpt-4o-mini")
    assert not check.ok
    assert [f.code for f in check.refusals] == ["too_few_examples"]
    assert "at least 10" in check.refusals[0].message
    broken = add_dataset(session, [{"messages": [{"role": "user", "content": "q"}]}, *[chat(i) for i in range(10)]])
    refused = launch_check(session, broken, "gpt-4o-mini")
    assert [f.code for f in refused.refusals] == ["example_missing_assistant_message"]


def test_launch_lists_warnings_that_need_acceptance(session):
    dataset_id = add_dataset(session, [chat(1), chat(1), *[chat(i) for i in range(2, 12)]])
    check = launch_check(session, dataset_id, "gpt-4o-mini")
    assert check.ok and check.needs_acceptance
    assert [f.as_dict()["code"] for f in check.warnings] == ["duplicate_example"]
    assert check.estimate.n_epochs == default_epochs_for(12)


def default_epochs_for(n: int) -> int:
    """The cookbook rule, restated for the test."""
    return min(25, 100 // n) if n * 3 < 100 else 3


def test_launch_refuses_errors_in_the_validation_data(session):
    train = add_dataset(session, [chat(i) for i in range(12)])
    validation = add_dataset(session, [{"messages": [{"role": "user", "content": "q"}]}])
    check = launch_check(session, train, "gpt-4o-mini", validation_dataset_id=validation)
    assert [f.code for f in check.refusals] == ["example_missing_assistant_message"]
    assert check.refusals[0].message.startswith("Validation data")


def test_a_clean_real_dataset_of_ten_examples_may_launch_without_questions(session):
    dataset = Dataset(name="pirate")
    session.add(dataset)
    session.commit()
    import_jsonl(session, dataset.id, io.BytesIO(shared("pirate_training_set.jsonl")))
    check = launch_check(session, dataset.id, "gpt-4o-mini-2024-07-18")
    assert check.ok and not check.needs_acceptance
    assert check.estimate.n_epochs == 10 and check.estimate.cost_usd > 0


def test_api_refuses_an_unknown_model_and_a_missing_dataset(api, toy):
    unknown = api.get(f"/api/datasets/{toy}/report", params={"model": "llama-9000"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_model"
    assert "llama-9000" in unknown.json()["detail"]
    assert api.get("/api/datasets/999/report").status_code == 404
    assert api.get(f"/api/datasets/{toy}/report", params={"split": "everything"}).status_code == 422


def test_api_needs_the_bearer_key(client, toy):
    with TestClient(client.app) as anonymous:
        assert anonymous.get(f"/api/datasets/{toy}/report").status_code == 401


def test_an_unchanged_dataset_is_reported_from_memory_and_a_change_is_seen(session, report_cache):
    dataset_id = add_dataset(session, [chat(i) for i in range(10)])
    first = build_report(session, dataset_id, cache=report_cache)
    assert build_report(session, dataset_id, cache=report_cache) is first
    session.add(Example(dataset_id=dataset_id, position=10, messages=chat(99)["messages"]))
    session.commit()
    assert build_report(session, dataset_id, cache=report_cache).n_examples == 11


def test_a_local_model_not_yet_prepared_is_counted_with_its_own_tokenizer_and_gets_a_cpu_time(
    client, session, settings, toy, report_cache
):
    report = build_report(session, toy, "SmolLM2-135M-Instruct", settings=settings, cache=report_cache)
    # Its tokenizer is read from the bundled GGUF file alone: exact counts, no conversion of the weights.
    assert report.exact and report.estimate.cost_usd is None
    assert not (settings.data_dir / "models" / "SmolLM2-135M-Instruct").exists()
    assert report.estimate.device == "cpu" and report.estimate.training_seconds_cpu > 0
    session.expire_all()
    assert all("local:SmolLM2-135M-Instruct" in (e.token_counts or {}) for e in session.exec(select(Example)))
    page = client.get(f"/datasets/{toy}/report?model=SmolLM2-135M-Instruct").text
    assert "Estimated training time" in page and "min on CPU" in page
    assert page.count("own tokenizer and chat template") == 1 and "approximate" not in page
    assert "o200k_base" not in page


def test_without_a_local_tokenizer_counts_are_approximate_and_the_page_says_so_once(
    client, session, settings, toy, report_cache, monkeypatch
):
    def unavailable(*args, **kwargs):
        raise FileNotFoundError("no tokenizer here")

    monkeypatch.setattr("app.datasets.validation.tokens.LocalCounter", unavailable)
    report = build_report(session, toy, "SmolLM2-135M-Instruct", settings=settings, cache=report_cache)
    assert not report.exact
    page = client.get(f"/datasets/{toy}/report?model=SmolLM2-135M-Instruct").text
    assert page.count("approximate") == 1 and page.count("o200k_base") == 1
    assert "own tokenizer" not in page


def test_offenders_of_a_stored_code_are_found_for_the_example_list_filter(session, report_cache):
    no_system = {
        "messages": [
            {"role": "user", "content": 'Say "code": "missing_content" please'},
            {"role": "assistant", "content": "ok"},
        ]
    }
    dataset_id = add_dataset(session, [chat(1), no_system, chat(2)])
    ids = example_ids_with_problem(session, dataset_id, "missing_system_message", cache=report_cache)
    assert len(ids) == 1 and session.get(Example, ids[0]).messages == no_system["messages"]
    assert example_ids_with_problem(session, dataset_id, "missing_content", cache=report_cache) == []
    assert stored_problem_clause("duplicate_example") is None


def test_an_empty_dataset_has_a_report_that_says_so(client, session):
    dataset_id = add_dataset(session, [])
    page = client.get(f"/datasets/{dataset_id}/report")
    assert page.status_code == 200 and "No valid examples yet." in page.text
    assert client.get("/datasets/9999/report").status_code == 404


def test_nothing_to_train_and_a_late_system_message_are_warnings_in_the_report(client, session, report_cache):
    """Issue #17: both were silent; now the report counts them and links to the examples."""
    silent = chat(1)
    silent["messages"][-1]["weight"] = 0
    late = chat(2)
    late["messages"].append({"role": "system", "content": "Now answer in French."})
    late["messages"].extend(chat(3)["messages"][1:])
    dataset_id = add_dataset(session, [silent, late, chat(4)])
    report = build_report(session, dataset_id, cache=report_cache)
    assert report.warnings["nothing_to_train"] == 1 and report.warnings["system_message_not_first"] == 1
    page = client.get(f"/datasets/{dataset_id}/report").text
    assert f'href="/datasets/{dataset_id}?problem=nothing_to_train"' in page
    assert f'href="/datasets/{dataset_id}?problem=system_message_not_first"' in page
