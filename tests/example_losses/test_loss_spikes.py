"""Loss spikes: a reported step far above the steps around it, never a curve that is still falling or noise."""

from __future__ import annotations

import random

from app.jobs.loss_spikes import find_spikes


def _points(losses: list[float]) -> list[tuple[int, float]]:
    return [(step, loss) for step, loss in enumerate(losses, start=1)]


def test_a_step_far_above_its_neighbours_is_a_spike_with_their_median_as_baseline():
    losses = [2.0, 1.8, 1.7, 1.6, 1.55, 1.5, 3.1, 1.45, 1.4, 1.42, 1.38, 1.35]
    (spike,) = find_spikes(_points(losses))
    assert spike.step == 7 and spike.loss == 3.1
    assert 1.4 < spike.baseline < 1.6 and spike.ratio > 1.9


def test_a_steeply_falling_start_and_a_smooth_curve_have_no_spikes():
    assert find_spikes(_points([6.0, 4.0, 2.5, 1.8, 1.5, 1.3, 1.2, 1.15, 1.1, 1.08])) == []
    assert find_spikes(_points([1.0 * 0.97**i for i in range(50)])) == []


def test_noise_is_not_a_spike_but_a_jump_well_outside_it_is():
    rng = random.Random(3)
    noisy = [1.0 + rng.uniform(-0.15, 0.15) for _ in range(40)]
    assert find_spikes(_points(noisy)) == []
    noisy[20] = 1.9
    assert [s.step for s in find_spikes(_points(noisy))] == [21]


def test_the_first_and_last_steps_need_neighbours_on_both_sides():
    assert find_spikes(_points([5.0, 1.0, 1.0, 1.0, 1.0])) == []
    assert find_spikes(_points([1.0, 1.0, 1.0, 1.0, 5.0])) == []
    assert [s.step for s in find_spikes(_points([1.0, 1.0, 5.0, 1.0, 1.0]))] == [3]


def test_points_may_come_unsorted_and_a_repeated_step_counts_once():
    points = [(3, 4.0), (1, 1.0), (2, 1.1), (4, 1.0), (5, 0.9), (3, 1.05)]
    assert find_spikes(points) == []  # the last report of step 3 (a resumed job reports it again) is 1.05
