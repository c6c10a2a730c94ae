"""Overfitting in plain words and the best checkpoint: pure functions over metrics and eval scores."""

from __future__ import annotations

import random

from app.jobs.overfit import (
    CheckpointScore,
    best_checkpoint,
    checkpoint_valid_loss,
    detect_overfitting,
    loss_rising,
    score_falling,
)


def points(train: list[float], valid: list[float | None], every: int = 5) -> list[dict]:
    out = []
    for i, (t, v) in enumerate(zip(train, valid, strict=True)):
        point = {"seq": i + 1, "step": (i + 1) * every, "train_loss": t}
        if v is not None:
            point["valid_loss"] = v
        out.append(point)
    return out


FALLING_TRAIN = [1.2 * 0.8**i for i in range(12)]


def test_rising_validation_loss_while_training_loss_falls_is_overfitting():
    # The case: validation loss is lowest at step 30, then rises while training loss falls to ~0.1.
    valid = [1.1, 0.9, 0.75, 0.62, 0.55, 0.52, 0.58, 0.66, 0.75, 0.86, 0.97, 1.1]
    verdict = detect_overfitting(points(FALLING_TRAIN, valid), best_step=30)
    assert verdict is not None
    assert verdict.since_step == 30
    assert verdict.message.startswith("Validation loss has risen since step 30 (0.52 → 1.1)")
    assert "while training loss kept falling" in verdict.message
    assert verdict.message.endswith("the model is overfitting; the checkpoint at step 30 is the best.")


def test_without_a_best_checkpoint_the_sentence_names_none():
    valid = [1.1, 0.9, 0.75, 0.62, 0.55, 0.52, 0.58, 0.66, 0.75, 0.86, 0.97, 1.1]
    verdict = detect_overfitting(points(FALLING_TRAIN, valid))
    assert verdict is not None and verdict.message.endswith("the model is overfitting.")


def test_falling_or_flat_validation_loss_is_not_overfitting():
    assert detect_overfitting(points(FALLING_TRAIN, [1.2 * 0.85**i for i in range(12)])) is None
    assert detect_overfitting(points(FALLING_TRAIN, [0.8] * 12)) is None


def test_noisy_flat_validation_loss_is_not_overfitting():
    # Validation loss jitters around a level (OpenAI's per-step valid_loss is one batch): not a trend.
    alarms = 0
    for seed in range(200):
        noise = random.Random(seed)
        valid = [0.8 + noise.gauss(0, 0.06) for _ in range(24)]
        train = [1.2 * 0.9**i for i in range(24)]
        alarms += detect_overfitting(points(train, valid)) is not None
    assert alarms <= 10  # ≤ 5% false alarms on pure noise


def test_noisy_but_rising_validation_loss_is_overfitting():
    noise = random.Random(7)
    valid = [(1.0 - 0.05 * i if i < 8 else 0.6 + 0.04 * (i - 8)) + noise.gauss(0, 0.02) for i in range(24)]
    train = [1.2 * 0.9**i for i in range(24)]
    verdict = detect_overfitting(points(train, valid))
    assert verdict is not None and 30 <= verdict.since_step <= 50


def test_one_bad_evaluation_at_the_end_is_not_a_trend():
    valid = [1.1, 0.9, 0.75, 0.62, 0.55, 0.52, 0.51, 0.5, 0.5, 0.49, 0.49, 0.7]
    assert detect_overfitting(points(FALLING_TRAIN, valid)) is None


def test_rising_validation_loss_with_rising_training_loss_is_not_called_overfitting():
    train = [0.5 + 0.05 * i for i in range(12)]
    valid = [1.1, 0.9, 0.75, 0.62, 0.55, 0.52, 0.58, 0.66, 0.75, 0.86, 0.97, 1.1]
    assert detect_overfitting(points(train, valid)) is None


def test_too_few_evaluations_say_nothing():
    assert detect_overfitting(points([1.0, 0.5], [0.6, 0.9])) is None
    assert loss_rising([(10, 0.5), (20, 0.9)]) is None
    assert detect_overfitting([]) is None


def test_validation_loss_only_at_some_steps_is_read_as_its_own_series():
    valid: list[float | None] = [None, 0.9, None, 0.6, None, 0.5, None, 0.7, None, 0.9, None, 1.1]
    verdict = detect_overfitting(points(FALLING_TRAIN, valid))
    assert verdict is not None and verdict.since_step == 30


def test_falling_eval_score_is_overfitting_when_beyond_sampling_error():
    scores = [(10, 0.5, 50), (20, 0.8, 50), (30, 0.55, 50)]
    verdict = detect_overfitting(points(FALLING_TRAIN, [None] * 12), scores, best_step=20)
    assert verdict is not None
    assert verdict.message.startswith("The eval pass rate has fallen since step 20 (80% → 55%)")
    assert verdict.message.endswith("the checkpoint at step 20 is the best.")


def test_a_small_eval_set_needs_a_bigger_drop():
    # 0.8 → 0.6 on 10 items is within sampling error: not evidence.
    assert score_falling([(10, 0.8, 10), (20, 0.6, 10)]) is None
    assert score_falling([(10, 0.8, 200), (20, 0.6, 200)]) is not None
    assert score_falling([(10, 0.6, 200), (20, 0.8, 200)]) is None


def test_both_signals_in_one_sentence():
    valid = [1.1, 0.9, 0.75, 0.62, 0.55, 0.52, 0.58, 0.66, 0.75, 0.86, 0.97, 1.1]
    scores = [(20, 0.5, 100), (40, 0.9, 100), (60, 0.6, 100)]
    verdict = detect_overfitting(points(FALLING_TRAIN, valid), scores, best_step=40)
    assert verdict is not None and verdict.since_step == 30
    assert "Validation loss has risen since step 30" in verdict.message
    assert "and the eval pass rate has fallen since step 40 (90% → 60%)" in verdict.message


def cp(step: int, valid_loss: float | None = None, score: float | None = None) -> CheckpointScore:
    return CheckpointScore(f"ckpt-{step}", step, f"ft:m:s:job:ckpt-step-{step}", valid_loss, score)


def test_best_checkpoint_by_eval_score_then_validation_loss_then_step():
    assert best_checkpoint([cp(10, 0.5, 0.6), cp(20, 0.9, 0.8), cp(30, 0.4, 0.7)]).step == 20
    # A tie on the score: the lower validation loss wins; a tie on both: the earlier step.
    assert best_checkpoint([cp(10, 0.5, 0.8), cp(20, 0.4, 0.8), cp(30, 0.6, 0.8)]).step == 20
    assert best_checkpoint([cp(10, 0.5, 0.8), cp(20, 0.5, 0.8)]).step == 10
    assert best_checkpoint([cp(10, None, 0.8), cp(20, 0.5, 0.8)]).step == 20
    # A checkpoint whose eval run has not finished is not ranked by its loss against scored ones.
    assert best_checkpoint([cp(10, 0.1, None), cp(20, 0.9, 0.5)]).step == 20


def test_best_checkpoint_without_eval_is_the_lowest_validation_loss():
    assert best_checkpoint([cp(10, 0.5), cp(20, 0.4), cp(30, 0.4), cp(40, 0.7)]).step == 20
    assert best_checkpoint([cp(10), cp(20)]) is None
    assert best_checkpoint([]) is None


def test_checkpoint_valid_loss_prefers_the_full_validation_set():
    assert checkpoint_valid_loss({"valid_loss": 0.5, "full_valid_loss": 0.45}) == 0.45
    assert checkpoint_valid_loss({"valid_loss": 0.5}) == 0.5
    assert checkpoint_valid_loss({"valid_loss": None}) is None
    assert checkpoint_valid_loss({"valid_loss": float("nan")}) is None
    assert checkpoint_valid_loss(None) is None
