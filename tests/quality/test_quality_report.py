"""The data-quality codes in the dataset report, its API, the example filter and `tuneboard check` (issue #21)."""

from __future__ import annotations

import json
import random

from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli as cli_app
from app.datasets import examples
from app.datasets.quality.near_duplicates import near_duplicate_clusters
from app.datasets.validation.report import ReportCache, build_report, example_ids_with_problem
from app.tables import Example
from tests.integration.test_report import add_dataset
from tests.quality.test_near_duplicates_and_outliers import BASE, edited

KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w"


def planted() -> tuple[list[dict], dict[int, str]]:
    """40 ordinary examples with planted problems: positions 3 and 30 near-duplicates (30 in validation), 5 an
    e-mail address, 6 a key, 8 a very long answer."""
    rng = random.Random(9)
    words = [f"word{i}" for i in range(800)]
    records = []
    for _i in range(40):
        question = " ".join(rng.choice(words) for _ in range(rng.randint(12, 18)))
        answer = " ".join(rng.choice(words) for _ in range(rng.randint(15, 25)))
        records.append(
            {
                "messages": [
                    {"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    records[3]["messages"][1]["content"] = BASE
    records[30]["messages"][1]["content"] = edited(BASE, 1)
    records[30]["messages"][2]["content"] = records[3]["messages"][2]["content"]
    records[5]["messages"][1]["content"] += " Mail me at jane.doe@gmail.com"
    records[6]["messages"][2]["content"] += f" Use the key {KEY}"
    records[8]["messages"][2]["content"] = " ".join(words) * 3
    return records, {30: "validation"}


def test_the_report_api_lists_the_quality_codes_with_counts_and_ids(api, session):
    records, splits = planted()
    dataset_id = add_dataset(session, records, "planted", splits=splits)
    ids = [row["id"] for row in api.get(f"/api/datasets/{dataset_id}/examples", params={"limit": 100}).json()["items"]]
    by_position = dict(enumerate(sorted(ids)))
    body = api.get(f"/api/datasets/{dataset_id}/report", params={"split": "all"}).json()
    warnings = body["warnings"]
    assert warnings["contains_pii"] == 1 and warnings["contains_secret"] == 1
    assert warnings["near_duplicate"] == 2 and warnings["near_duplicate_leakage"] == 1
    assert warnings["outlier_answer"] >= 1
    quality = body["quality"]
    assert quality["codes"]["near_duplicate"] == {"count": 2, "example_ids": [by_position[3], by_position[30]]}
    assert quality["codes"]["near_duplicate_leakage"]["example_ids"] == [by_position[3]]
    [cluster] = quality["near_duplicate_clusters"]
    assert cluster["example_ids"] == [by_position[3], by_position[30]] and cluster["leaks_split"]
    assert by_position[8] in quality["codes"]["outlier_answer"]["example_ids"]
    assert {"example_id": by_position[8], "measure": "answer", "direction": "long"}.items() <= next(
        o for o in quality["outliers"] if o["example_id"] == by_position[8] and o["measure"] == "answer"
    ).items()
    assert KEY not in json.dumps(body)
    # The training split's report: the validation example is out of it, the leak is still named.
    train = api.get(f"/api/datasets/{dataset_id}/report", params={"split": "train"}).json()
    assert train["warnings"]["near_duplicate_leakage"] == 1 and "near_duplicate" in train["warnings"]


def test_the_example_filter_lists_the_computed_quality_codes(session):
    records, splits = planted()
    dataset_id = add_dataset(session, records, "planted", splits=splits)
    cache = ReportCache()
    near = example_ids_with_problem(session, dataset_id, "near_duplicate", cache=cache)
    assert len(near) == 2
    assert len(example_ids_with_problem(session, dataset_id, "contains_secret", cache=cache)) == 1
    assert example_ids_with_problem(session, dataset_id, "near_duplicate_leakage", cache=cache) == near[:1]


def test_an_edit_that_ends_the_near_duplicate_updates_the_report(session):
    records, splits = planted()
    dataset_id = add_dataset(session, records, "planted", splits=splits)
    cache = ReportCache()
    before = build_report(session, dataset_id, cache=cache, split="all")
    assert before.warnings["near_duplicate"] == 2
    [_first, second] = before.quality.ids["near_duplicate"]
    example = examples.get_example(session, second)
    record = example.to_record()
    record["messages"][1]["content"] = "Something else entirely, about a refund for a broken kettle and its lid."
    record["messages"][2]["content"] = "We will refund the kettle today."
    examples.update_example(session, second, record, example.version)
    after = build_report(session, dataset_id, cache=cache, split="all")
    assert "near_duplicate" not in after.warnings
    assert after.as_api() == build_report(session, dataset_id, cache=ReportCache(), split="all").as_api()


def test_tuneboard_check_prints_the_quality_findings(tmp_path):
    records, splits = planted()
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for i, r in enumerate(records) if i not in splits))
    validation = tmp_path / "validation.jsonl"
    validation.write_text(json.dumps(records[30]) + "\n")
    result = CliRunner().invoke(cli_app, ["check", str(train), "--validation", str(validation), "--json"])
    body = json.loads(result.stdout)
    warnings = body["train"]["report"]["warnings"]
    assert warnings["contains_pii"] == 1 and warnings["contains_secret"] == 1
    assert warnings["near_duplicate_leakage"] == 1
    lines = {(p["line"], p["code"]) for p in body["train"]["problems"]}
    assert {(4, "near_duplicate_leakage"), (6, "contains_pii"), (7, "contains_secret"), (9, "outlier_answer")} <= lines
    assert KEY not in result.stdout
    text = CliRunner().invoke(cli_app, ["check", str(train), "--validation", str(validation)]).stdout
    assert "near_duplicate_leakage" in text and "contains_secret" in text and KEY not in text


def test_near_duplicate_clusters_within_a_dataset_and_against_another(session):
    records, splits = planted()
    dataset_id = add_dataset(session, records, "planted", splits=splits)
    [within] = near_duplicate_clusters(session, dataset_id)
    assert len(within.example_ids) == 2 and within.leaks_split
    other = [json.loads(json.dumps(records[12]))]
    other[0]["messages"][2]["content"] += " Thanks"
    other_id = add_dataset(session, other + records[20:22], "other")
    [across] = near_duplicate_clusters(session, dataset_id, other_dataset_id=other_id)
    assert across.leaks_split and len(across.example_ids) == 2
    main_ids = set(session.scalars(select(Example.id).where(Example.dataset_id == dataset_id)))
    assert len(main_ids.intersection(across.example_ids)) == 1  # one of each dataset; exact copies are no cluster
