"""Overfitting in plain words, and the best checkpoint: pure functions over a job's metrics and eval scores.

- detect_overfitting(points, eval_scores=(), best_step=None) -> Overfitting | None
  `points` are the job's metric points ({step, train_loss, valid_loss, …}, app.jobs.monitoring.metric_series);
  `eval_scores` are (step, pass rate 0–1, number of items graded) per evaluated checkpoint.
- best_checkpoint(candidates) -> CheckpointScore | None
  Highest eval pass rate; ties → lower validation loss → earlier step. Without eval scores: lowest validation loss.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

LOSS_RISE = 0.10  # validation loss must rise by 10% of its best value, and beyond the series' noise
SCORE_DROP = 0.10  # an eval pass rate must fall by 10 points, and beyond its sampling error
TRAIN_DROP = 0.10  # training loss must have fallen by 10% since the best point ("kept falling")
LOSS_WINDOW = 2  # evaluations after the best one that must all be worse
NOISE_TIMES = 3  # …and by this many standard deviations of its scatter (the lowest of many points is low by luck)
SMOOTH_FROM = 6  # a validation series at least this long is smoothed (a centred mean of 3) before judging
TRAIN_MEAN_OF = 5  # training loss is compared as the mean of this many points (it is a per-batch value)


@dataclass(frozen=True)
class Worsening:
    """A series that got worse after its best point: validation loss rising or an eval score falling."""

    metric: str  # valid_loss | eval_score
    since_step: int
    best: float
    latest: float
    latest_step: int


@dataclass(frozen=True)
class Overfitting:
    """The verdict: what got worse since when, how training loss moved, and a sentence for a person."""

    worsening: list[Worsening]
    train_at_best: float
    train_latest: float
    best_step: int | None
    message: str

    @property
    def since_step(self) -> int:
        """The earliest step from which things got worse."""
        return min(w.since_step for w in self.worsening)


@dataclass(frozen=True)
class CheckpointScore:
    """What ranks a checkpoint: its validation loss and, when its eval run completed, its pass rate (0–1)."""

    checkpoint_id: str
    step: int
    model: str
    valid_loss: float | None = None
    eval_score: float | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def series(points: Sequence[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """(step, value) of every point that has a finite `key`, in step order (a repeated step keeps its last value)."""
    found: dict[int, float] = {}
    for point in points:
        step, value = point.get("step"), _number(point.get(key))
        if isinstance(step, int) and value is not None:
            found[step] = value
    return sorted(found.items())


def _smoothed(values: list[float]) -> list[float]:
    """A centred mean of 3 (2 at the ends): one noisy evaluation cannot make or hide a trend."""
    n = len(values)
    return [statistics.fmean(values[max(0, i - 1) : min(n, i + 2)]) for i in range(n)]


def _noise(values: list[float]) -> float:
    """The scatter of single evaluations (a robust standard deviation): from second differences, which a straight
    trend does not move and a bend moves at one point only."""
    second = [abs(values[i - 1] - 2 * values[i] + values[i + 1]) for i in range(1, len(values) - 1)]
    # A second difference of independent noise has sqrt(6) times its standard deviation; 1.4826 turns a median
    # absolute value into one.
    return 1.4826 * statistics.median(second) / math.sqrt(6) if second else 0.0


def loss_rising(valid: list[tuple[int, float]]) -> Worsening | None:
    """Validation loss that rose after its lowest point over the last evaluations, by more than 10% and the noise."""
    if len(valid) < 1 + LOSS_WINDOW:
        return None
    raw = [v for _, v in valid]
    values, noise = raw, 0.0
    if len(raw) >= SMOOTH_FROM:
        values, noise = _smoothed(raw), _noise(raw)
    best = min(range(len(values)), key=lambda i: (values[i], i))
    if len(values) - 1 - best < LOSS_WINDOW:
        return None
    margin = max(LOSS_RISE * abs(values[best]), NOISE_TIMES * noise)
    # A trend, not one bad evaluation: the last few evaluations are all worse, raw and smoothed.
    tail = values[-LOSS_WINDOW:] + raw[-LOSS_WINDOW:]
    if values[-1] - values[best] < margin or any(v - values[best] < margin / 2 for v in tail):
        return None
    return Worsening("valid_loss", valid[best][0], raw[best], raw[-1], valid[-1][0])


def score_falling(scores: Sequence[tuple[int, float, int]]) -> Worsening | None:
    """An eval pass rate that fell after its best checkpoint by 10 points and by more than twice its sampling
    error (the binomial standard error of the difference, from the number of items graded)."""
    ordered = sorted(scores)
    if len(ordered) < 2:
        return None
    best = max(range(len(ordered)), key=lambda i: (ordered[i][1], -i))
    if best == len(ordered) - 1:
        return None
    (best_step, high, n_high), (last_step, low, n_low) = ordered[best], ordered[-1]
    error = math.sqrt(high * (1 - high) / max(n_high, 1) + low * (1 - low) / max(n_low, 1))
    if high - low < max(SCORE_DROP, 2 * error):
        return None
    return Worsening("eval_score", best_step, high, low, last_step)


def _mean_train(train: list[tuple[int, float]], up_to: int | None = None) -> float | None:
    upto = [v for s, v in train if up_to is None or s <= up_to]
    return statistics.fmean(upto[-TRAIN_MEAN_OF:]) if upto else None


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _sentence(worse: list[Worsening], train_before: float, train_now: float, best_step: int | None) -> str:
    parts = []
    for w in worse:
        if w.metric == "valid_loss":
            parts.append(f"Validation loss has risen since step {w.since_step} ({w.best:.3g} → {w.latest:.3g})")
        else:
            parts.append(
                f"the eval pass rate has fallen since step {w.since_step} ({_percent(w.best)} → {_percent(w.latest)})"
            )
    what = " and ".join(parts)
    what = what[0].upper() + what[1:]
    best = f"; the checkpoint at step {best_step} is the best" if best_step is not None else ""
    return (
        f"{what} while training loss kept falling ({train_before:.3g} → {train_now:.3g}): "
        f"the model is overfitting{best}."
    )


def detect_overfitting(
    points: Sequence[dict[str, Any]],
    eval_scores: Sequence[tuple[int, float, int]] = (),
    best_step: int | None = None,
) -> Overfitting | None:
    """Overfitting: validation loss rising or the eval score falling while training loss falls; None otherwise.

    `best_step` names the best checkpoint in the sentence (see best_checkpoint)."""
    train = series(points, "train_loss")
    worse = [w for w in (loss_rising(series(points, "valid_loss")), score_falling(eval_scores)) if w is not None]
    if not train or not worse:
        return None
    since = min(w.since_step for w in worse)
    before, now = _mean_train(train, since), _mean_train(train)
    if before is None or now is None or now > before * (1 - TRAIN_DROP):
        return None  # training loss did not fall either: something else is wrong, not overfitting
    return Overfitting(worse, before, now, best_step, _sentence(worse, before, now, best_step))


def checkpoint_valid_loss(metrics: dict[str, Any] | None) -> float | None:
    """A checkpoint's validation loss: the full validation set's when reported, else the last evaluation's."""
    metrics = metrics or {}
    full = _number(metrics.get("full_valid_loss"))
    return full if full is not None else _number(metrics.get("valid_loss"))


def best_checkpoint(candidates: Sequence[CheckpointScore]) -> CheckpointScore | None:
    """The best checkpoint: highest eval pass rate (ties: lower validation loss, then the earlier step); when no
    checkpoint has an eval score, the lowest validation loss (ties: the earlier step); None when neither is known."""
    scored = [c for c in candidates if c.eval_score is not None]
    if scored:
        return min(
            scored,
            key=lambda c: (
                -(c.eval_score or 0.0),
                c.valid_loss is None,
                c.valid_loss if c.valid_loss is not None else 0.0,
                c.step,
            ),
        )
    with_loss = [c for c in candidates if c.valid_loss is not None]
    if with_loss:
        return min(with_loss, key=lambda c: (c.valid_loss or 0.0, c.step))
    return None
