"""Pass rates and win rates with Wilson intervals, and McNemar's test on the items that changed outcome."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.evals.stats import changed_items, mcnemar_exact, pass_rate, wilson_interval, win_rate


def test_wilson_interval_known_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)


def test_no_items_means_the_interval_says_nothing():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    rate = pass_rate(0, 0)
    assert (rate.value, rate.low, rate.high, rate.n) == (None, 0.0, 1.0, 0)


@pytest.mark.parametrize(("passed", "total"), [(-1, 3), (4, 3), (0, -1)])
def test_impossible_counts_are_refused(passed, total):
    with pytest.raises(ValueError):
        wilson_interval(passed, total)


@given(st.integers(min_value=1, max_value=10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_bounds_hold_the_observed_rate_and_stay_in_zero_one(counts):
    passed, total = counts
    low, high = wilson_interval(passed, total)
    assert 0.0 <= low <= passed / total <= high <= 1.0


@given(st.integers(0, 50), st.integers(1, 50))
def test_more_items_narrow_the_interval(passed, total):
    passed = min(passed, total)
    low, high = wilson_interval(passed, total)
    low_more, high_more = wilson_interval(passed * 4, total * 4)
    assert high_more - low_more < high - low


def test_pass_rate():
    rate = pass_rate(8, 10)
    assert rate.value == 0.8
    assert (rate.low, rate.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert rate.to_dict() == {"value": 0.8, "low": rate.low, "high": rate.high, "n": 10}


def test_win_rate_counts_ties_as_half():
    rate = win_rate(6, 2, 2)
    assert rate.value == pytest.approx(0.7)
    assert (rate.low, rate.high) == pytest.approx(wilson_interval(7, 10))
    assert (rate.wins, rate.losses, rate.ties, rate.n) == (6, 2, 2, 10)
    assert win_rate(0, 0, 4).value == 0.5
    assert win_rate(0, 0, 0).value is None


def test_changed_items_between_two_runs():
    run_a = {0: True, 1: False, 2: False, 3: True, 4: True}
    run_b = {0: True, 1: True, 2: True, 3: False, 5: True}
    changed = changed_items(run_a, run_b)
    assert (changed.fixed, changed.broken, changed.both) == ([1, 2], [3], 4)
    assert changed.p_value == pytest.approx(1.0)


def test_mcnemar_exact_known_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)  # all five changes one way: 2 · (1/2)^5
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # 2 · (C(10,0) + C(10,1)) / 2^10
    assert mcnemar_exact(3, 3) == 1.0
    assert 0.0 < mcnemar_exact(400, 600) < 1e-9
