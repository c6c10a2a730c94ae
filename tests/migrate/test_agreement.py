"""Agreement runs and their report: exact match, similarity and a judge over a golden set, with 95% intervals."""

from __future__ import annotations

import pytest

from app.errors import Invalid, NotFound
from app.evals.graders import validate_testing_criteria
from app.evals.stats import pass_rate
from app.migrate.agreement import (
    EXACT,
    JUDGE,
    SIMILAR,
    agreement_criteria,
    agreement_report,
    mean_interval,
    recent_agreements,
    start_agreement,
)
from app.migrate.golden import recent_captures, start_capture
from app.tables import Eval, EvalRunItem, EvalRunStatus
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401


def test_an_agreement_run_is_queued_over_the_whole_golden_set_with_its_graders(session, settings):
    golden = make_dataset(session, n_train=3, n_validation=2, name="golden")
    run = start_agreement(session, settings, golden.id, TINY, judge_model=TINY)
    evaluation = session.get(Eval, run.eval_id)
    assert run.status == EvalRunStatus.queued and run.n_items == 5 and run.model == TINY and run.purpose == "eval"
    assert evaluation.dataset_id == golden.id and evaluation.split == "all"
    assert [c["name"] for c in evaluation.testing_criteria] == [EXACT, SIMILAR, JUDGE]
    assert evaluation.testing_criteria[1]["pass_threshold"] == 0.8
    assert evaluation.testing_criteria[2]["model"] == TINY
    assert recent_agreements(session) == [run]
    plain = start_agreement(session, settings, golden.id, TINY)
    assert [c["name"] for c in session.get(Eval, plain.eval_id).testing_criteria] == [EXACT, SIMILAR]
    with pytest.raises(Invalid):
        start_agreement(session, settings, golden.id, " ")
    with pytest.raises(NotFound):
        start_agreement(session, settings, golden.id, "no-such-model")


def test_a_capture_run_is_queued_over_the_dataset_without_graders(session, settings):
    source = make_dataset(session, n_train=4)
    run = start_capture(session, settings, TINY, source.id)
    assert run.purpose == "capture" and run.n_items == 4 and run.metadata_ == {"source_dataset_id": str(source.id)}
    assert session.get(Eval, run.eval_id).testing_criteria == []
    assert recent_captures(session) == [run] and recent_agreements(session) == []
    again = start_capture(session, settings, TINY, source.id)  # eval names are unique: a second capture is fine
    assert again.id != run.id


def test_graders_of_the_agreement_eval_are_valid_as_written():
    assert len(validate_testing_criteria(agreement_criteria("judge-model"))) == 3


def result(name, score, passed, error=None):
    return {"name": name, "type": "x", "score": score, "passed": passed, "error": error}


def test_the_report_counts_agreement_with_intervals_and_lists_the_differing_items(session, settings):
    golden = make_dataset(session, n_train=4, name="golden")
    run = start_agreement(session, settings, golden.id, TINY, judge_model=TINY)
    rows = [
        ("8", [result(EXACT, 1, True), result(SIMILAR, 1.0, True), result(JUDGE, 5, True)], "pass"),
        ("3", [result(EXACT, 0, False), result(SIMILAR, 0.5, False), result(JUDGE, 2, False)], "fail"),
        ("44", [result(EXACT, 0, False), result(SIMILAR, 0.9, True), result(JUDGE, 4, True)], "fail"),
        ("", [result(EXACT, 0, False, "no output"), result(SIMILAR, 0, False, "no output")], "error"),
    ]
    for index, (output, results, status) in enumerate(rows):
        item = {
            "messages": [{"role": "user", "content": f"What is {index} plus {index}?"}],
            "reference": str(2 * index),
        }
        sample = {
            "output": [{"role": "assistant", "content": output}],
            "error": None if output else {"message": "boom"},
        }
        session.add(
            EvalRunItem(run_id=run.id, item_index=index, item=item, sample=sample, results=results, status=status)
        )
    session.commit()
    report = agreement_report(session, run.id)
    assert report.golden.id == golden.id and not report.done and report.errored == 1
    assert report.exact == pass_rate(1, 3)
    assert report.similarity.n == 3 and report.similarity.value == pytest.approx(0.8)
    assert 0 <= report.similarity.low < 0.8 < report.similarity.high <= 1
    assert report.judge == pass_rate(2, 3)
    assert report.n_disagreements == 3
    assert [d.index for d in report.disagreements] == [3, 1, 2]  # unscored first, then the least similar
    second = report.disagreements[1]
    assert (second.prompt, second.reference, second.output, second.similarity, second.judge) == (
        "What is 1 plus 1?",
        "2",
        "3",
        0.5,
        2.0,
    )
    assert report.disagreements[0].error == "boom"


def test_a_report_without_a_judge_has_no_judge_rate(session, settings):
    golden = make_dataset(session, n_train=2)
    run = start_agreement(session, settings, golden.id, TINY)
    report = agreement_report(session, run.id)
    assert report.judge is None and report.exact.value is None and report.similarity.value is None


def test_the_mean_interval_is_students_t_kept_in_range():
    assert mean_interval([]).value is None
    assert mean_interval([0.7]).low == 0.0 and mean_interval([0.7]).high == 1.0
    two = mean_interval([0.4, 0.6])
    assert two.value == pytest.approx(0.5) and two.low == 0.0 and two.high == 1.0  # t=12.7 with one degree
    many = mean_interval([0.5, 0.7] * 50)
    assert many.value == pytest.approx(0.6) and many.high - many.low == pytest.approx(2 * 1.98 * 0.1005 / 10, rel=0.01)
