"""Comparing two runs and reviewing them blind: changed items, the stored random order, votes, the win rate."""

from __future__ import annotations

import random

import pytest
from sqlmodel import select

from app.errors import Conflict, Invalid, NotFound
from app.evals import reviews
from app.evals.compare import OVERALL, compare_runs, grader_rates, output_text
from app.evals.stats import win_rate
from app.tables import EvalRunStatus, PairwiseVote
from tests.evals.pages_support import make_eval, make_run, two_runs


def test_compare_finds_the_items_that_changed_outcome_with_both_outputs(session):
    _, base, tuned = two_runs(session)
    result = compare_runs(session, base.id, tuned.id)
    assert result.n_common == 6
    assert [c.item_index for c in result.changed] == [1, 2, 3, 5]
    directions = {c.item_index: c.direction for c in result.changed}
    assert directions == {1: "worse", 2: "better", 3: "better", 5: "changed"}
    first = result.changed[0]
    assert output_text(first.a.sample) == "2" and output_text(first.b.sample) == "3"
    assert first.item["reference"] == "2"
    assert (result.count("better"), result.count("worse"), result.count("changed")) == (2, 1, 1)


def test_an_item_is_changed_when_one_grader_s_verdict_flips_though_it_fails_in_both(session):
    ev = make_eval(session)
    a = make_run(session, ev.id, "a", {0: "x", 1: "y"}, graders=("exact", "pattern"))
    b = make_run(session, ev.id, "b", {0: "x", 1: "y"}, graders=("exact", "pattern"))
    row = reviews.run_items(session, b.id)[0]
    row.results = [row.results[0], {**row.results[1], "passed": True, "score": 1.0}]
    session.add(row)
    session.commit()
    result = compare_runs(session, a.id, b.id)
    assert [(c.item_index, c.direction, c.flipped) for c in result.changed] == [(0, "better", ["pattern"])]
    assert result.changed[0].a.status == result.changed[0].b.status == "fail"
    assert compare_runs(session, b.id, a.id).changed[0].direction == "worse"


def test_compare_gives_each_grader_s_rate_for_both_runs_errors_apart(session):
    _, base, tuned = two_runs(session)
    rates = {pair.name: pair for pair in compare_runs(session, base.id, tuned.id).rates}
    overall = rates[OVERALL]
    assert (overall.a.passed, overall.a.failed, overall.a.errored) == (2, 3, 1)
    assert (overall.b.passed, overall.b.failed, overall.b.errored) == (3, 3, 0)
    assert overall.a.rate == pytest.approx(2 / 5) and overall.b.rate == pytest.approx(3 / 6)
    low, high = overall.b.interval
    assert low < 0.5 < high
    assert overall.delta == pytest.approx(0.5 - 0.4)
    assert rates["exact"].a.graded == 5 and rates["exact"].b.graded == 6


def test_compare_counts_only_the_items_both_runs_have(session):
    ev = make_eval(session)
    done = make_run(session, ev.id, "a", {0: "0", 1: "2", 2: "4"})
    part = make_run(session, ev.id, "b", {0: "0", 1: "x"}, status=EvalRunStatus.canceled)
    result = compare_runs(session, done.id, part.id)
    assert result.n_common == 2
    rates = {p.name: p for p in result.rates}
    assert rates[OVERALL].a.graded == 2 and rates[OVERALL].a.passed == 2


def test_grader_rates_read_the_run_s_counts(session):
    _, base, _ = two_runs(session)
    overall, exact = grader_rates(base)
    assert (overall.name, overall.passed, overall.failed, overall.errored) == (OVERALL, 2, 3, 1)
    assert (exact.name, exact.passed, exact.failed) == ("exact", 2, 3)


def test_runs_of_different_evals_or_the_same_run_are_refused(session):
    _, base, tuned = two_runs(session)
    other = make_eval(session, "other")
    stranger = make_run(session, other.id, "a", {0: "0"})
    with pytest.raises(Invalid, match="different evals"):
        compare_runs(session, base.id, stranger.id)
    with pytest.raises(Invalid, match="two different runs"):
        compare_runs(session, base.id, base.id)
    with pytest.raises(NotFound):
        compare_runs(session, base.id, "evalrun_nope")
    with pytest.raises(Invalid, match="different evals"):
        reviews.create_review(session, tuned.id, stranger.id)


def test_a_review_takes_the_items_both_answered_in_a_random_stored_order(session):
    _, base, tuned = two_runs(session)
    review = reviews.create_review(session, base.id, tuned.id, rng=random.Random(7))
    votes = session.exec(select(PairwiseVote).where(PairwiseVote.review_id == review.id).order_by("id")).all()
    assert sorted(v.item_index for v in votes) == [0, 1, 2, 3, 4]  # item 5 errored on base
    assert [v.item_index for v in votes] != [0, 1, 2, 3, 4]
    assert {v.a_first for v in votes} == {True, False}
    again = reviews.create_review(session, base.id, tuned.id, rng=random.Random(7))
    replay = session.exec(select(PairwiseVote).where(PairwiseVote.review_id == again.id).order_by("id")).all()
    assert [(v.item_index, v.a_first) for v in replay] == [(v.item_index, v.a_first) for v in votes]


def test_the_next_item_shows_the_answers_by_side_as_stored(session):
    _, base, tuned = two_runs(session)
    review = reviews.create_review(session, base.id, tuned.id, rng=random.Random(3))
    shown = reviews.next_vote(session, review.id)
    assert shown is not None and (shown.position, shown.total) == (1, 5)
    index = shown.vote.item_index
    answers = {"a": output_text(reviews.run_items(session, base.id)[index].sample)}
    answers["b"] = output_text(reviews.run_items(session, tuned.id)[index].sample)
    assert shown.left == answers["a" if shown.vote.a_first else "b"]
    assert shown.right == answers["b" if shown.vote.a_first else "a"]
    assert shown.prompt == [{"role": "user", "content": f"What is {index} plus {index}?"}]
    assert shown.reference == str(2 * index)


def test_clicking_a_side_records_the_run_behind_it(session):
    _, base, tuned = two_runs(session)
    review = reviews.create_review(session, base.id, tuned.id, rng=random.Random(3))
    for _ in range(5):
        shown = reviews.next_vote(session, review.id)
        choice = reviews.choice_for_side(session, review.id, shown.vote.item_index, "left")
        assert choice == ("a" if shown.vote.a_first else "b")
        reviews.cast_vote(session, review.id, shown.vote.item_index, choice)
    assert reviews.next_vote(session, review.id) is None
    assert reviews.get_review(session, review.id).status == "completed"
    with pytest.raises(Invalid):
        reviews.choice_for_side(session, review.id, 0, "up")


def test_votes_give_the_win_rate_with_ties_as_half_and_its_interval(session):
    _, base, tuned = two_runs(session)
    review = reviews.create_review(session, base.id, tuned.id)
    for index, choice in zip([0, 1, 2, 3], ["a", "b", "b", "tie"], strict=True):
        reviews.cast_vote(session, review.id, index, choice, reason="why not")
    results = reviews.review_results(session, review.id)
    assert (results.wins, results.losses, results.ties, results.pending) == (1, 2, 1, 1)
    assert results.rate == pytest.approx(1.5 / 4)
    expected = win_rate(1, 2, 1)
    assert results.interval == pytest.approx((expected.low, expected.high))
    assert results.winner == "tie"  # four votes prove nothing
    assert reviews.get_review(session, review.id).status == "open"
    reviews.cast_vote(session, review.id, 1, "a")  # a vote can be changed
    assert reviews.review_results(session, review.id).wins == 2


def test_a_clear_majority_names_the_winner(session):
    ev = make_eval(session)
    answers = {i: str(2 * i) for i in range(30)}
    a, b = make_run(session, ev.id, "a", answers), make_run(session, ev.id, "b", answers)
    review = reviews.create_review(session, a.id, b.id)
    for i in range(30):
        reviews.cast_vote(session, review.id, i, "b" if i else "tie")
    results = reviews.review_results(session, review.id)
    assert results.winner == "b" and results.rate < 0.1


def test_bad_votes_and_unfinished_runs_are_refused(session):
    ev, base, tuned = two_runs(session)
    review = reviews.create_review(session, base.id, tuned.id)
    with pytest.raises(Invalid, match="a, b or tie"):
        reviews.cast_vote(session, review.id, 0, "left")
    with pytest.raises(NotFound):
        reviews.cast_vote(session, review.id, 5, "a")  # errored on base: not in the review
    with pytest.raises(NotFound):
        reviews.review_results(session, "review_nope")
    running = make_run(session, ev.id, "c", {0: "0"}, status=EvalRunStatus.in_progress)
    with pytest.raises(Conflict, match="still in_progress"):
        reviews.create_review(session, base.id, running.id)
    failed_everywhere = make_run(session, ev.id, "d", {0: None, 1: None})
    with pytest.raises(Invalid, match="nothing to review"):
        reviews.create_review(session, base.id, failed_everywhere.id)


def test_the_reviews_of_an_eval_are_listed(session):
    ev, base, tuned = two_runs(session)
    first = reviews.create_review(session, base.id, tuned.id)
    second = reviews.create_review(session, tuned.id, base.id)
    other = make_eval(session, "other")
    reviews.create_review(
        session, make_run(session, other.id, "a", {0: "0"}).id, make_run(session, other.id, "b", {0: "1"}).id
    )
    assert {r.id for r in reviews.reviews_of_eval(session, ev.id)} == {first.id, second.id}


# -- a judge model -------------------------------------------------------------------------------------------------
class ScriptedJudge:
    """Stands in for the chat: prefers the answer that is the right sum, or always says 1 (position bias)."""

    def __init__(self, mode: str):
        self.mode, self.prompts = mode, []

    def __call__(self, *args, **kwargs):
        return self  # stands in for the Judges class too

    def close(self):
        self.closed = True

    def ask(self, model_id, messages, params):
        self.prompts.append(messages)
        if self.mode == "first":
            return "1"
        text = messages[-1]["content"]
        reference = text.split("Reference answer (written by a person):\n")[1].split("\n")[0]
        one = text.split("Answer 1:\n")[1].split("\n")[0]
        two = text.split("Answer 2:\n")[1].split("\n")[0]
        return (
            "1" if one == reference and two != reference else "2" if two == reference and one != reference else "Tie."
        )


def test_a_judge_votes_on_every_item_seeing_both_orders(session, settings, monkeypatch):
    _, base, tuned = two_runs(session)
    judge = ScriptedJudge("fair")
    monkeypatch.setattr(reviews, "Judges", judge)
    monkeypatch.setattr(reviews, "resolve_model", lambda *args: None)
    review = reviews.create_review(session, base.id, tuned.id)
    results = reviews.judge_review(session, settings, None, review.id, "judge-model")
    assert len(judge.prompts) == 10 and judge.closed  # five items, both orders
    assert judge.prompts[0][0]["role"] == "system" and "Reply with one word" in judge.prompts[0][0]["content"]
    # Base right alone on item 1; tuned right alone on items 2 and 3; both right on 0, both wrong on 4.
    assert (results.wins, results.losses, results.ties, results.pending) == (1, 2, 2, 0)
    assert results.review.judge == "judge-model" and results.review.status == "completed"
    votes = session.exec(select(PairwiseVote).where(PairwiseVote.review_id == review.id)).all()
    assert all(v.reason.startswith("judge-model: A first: ") for v in votes)


def test_a_judge_that_always_picks_the_first_answer_ends_in_ties(session, settings, monkeypatch):
    _, base, tuned = two_runs(session)
    monkeypatch.setattr(reviews, "Judges", ScriptedJudge("first"))
    monkeypatch.setattr(reviews, "resolve_model", lambda *args: None)
    review = reviews.create_review(session, base.id, tuned.id)
    results = reviews.judge_review(session, settings, None, review.id, "judge-model")
    assert (results.wins, results.losses, results.ties) == (0, 0, 5)
    one_way = reviews.create_review(session, base.id, tuned.id)
    results = reviews.judge_review(session, settings, None, one_way.id, "judge-model", both_orders=False)
    assert results.ties == 0 and results.wins + results.losses == 5


def test_the_judge_s_verdict_is_read_from_its_first_word_that_names_one():
    assert reviews.parse_verdict("2") == "2"
    assert reviews.parse_verdict("Answer 1 is better.") == "1"
    assert reviews.parse_verdict("TIE") == "tie"
    assert reviews.parse_verdict("both are fine") is None
    assert reviews.parse_verdict("12 apples") is None


@pytest.mark.slow
def test_a_local_model_can_judge_a_review(session, settings):
    """The real chat path with the tiny random model as the judge: every item gets a vote and a reason."""
    from app.engine.inference import ChatEngine

    chat_engine = ChatEngine(settings)
    try:
        _, base, tuned = two_runs(session)
        review = reviews.create_review(session, base.id, tuned.id)
        results = reviews.judge_review(session, settings, chat_engine, review.id, "tiny-llama")
        assert results.pending == 0 and results.voted == 5
        votes = session.exec(select(PairwiseVote).where(PairwiseVote.review_id == review.id)).all()
        assert all(v.reason.startswith("tiny-llama: A first:") and " | B first:" in v.reason for v in votes)
        with pytest.raises(NotFound):
            reviews.judge_review(session, settings, chat_engine, review.id, "no-such-model")
    finally:
        chat_engine.close()
