"""Loss spikes on a job's chart: reported steps whose training loss is far above the steps around it (pure).

A reported step is a spike when, against the training losses of up to SPIKE_WINDOW reported steps on each side
(at least 2 on each side, so the first and last steps are never judged on one side alone):
- it is at least SPIKE_RATIO times their median (the baseline), and
- it rises above that median by more than SPIKE_SPREADS times their robust spread (1.4826 x the median absolute
  deviation, which is the standard deviation for normal noise and ignores an outlier among them), and
- it is above the median of the steps before it (a curve still falling steeply is not spiking).
Each reported step's loss is that one step's batch (the engine reports single steps, not running means), so a
spike names one batch; batches.jsonl says which training lines it held.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

SPIKE_WINDOW = 5
SPIKE_RATIO = 1.2
SPIKE_SPREADS = 3.5
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Spike:
    """A reported step far above its neighbours: its loss and their median."""

    step: int
    loss: float
    baseline: float

    @property
    def ratio(self) -> float:
        """How many times the baseline the spike's loss is."""
        return self.loss / self.baseline if self.baseline > 0 else float("inf")


def find_spikes(points: list[tuple[int, float]]) -> list[Spike]:
    """The spikes among (step, training loss) points, in step order (points may come unsorted, a step twice: the
    last one given counts)."""
    by_step = dict(points)
    steps = sorted(by_step)
    losses = [by_step[s] for s in steps]
    spikes = []
    for i, (step, loss) in enumerate(zip(steps, losses, strict=True)):
        before = losses[max(0, i - SPIKE_WINDOW) : i]
        after = losses[i + 1 : i + 1 + SPIKE_WINDOW]
        if len(before) < 2 or len(after) < 2:
            continue
        around = before + after
        baseline = median(around)
        spread = MAD_TO_SD * median(abs(x - baseline) for x in around)
        rise = loss - baseline
        if loss >= SPIKE_RATIO * baseline and rise > SPIKE_SPREADS * spread and loss > median(before):
            spikes.append(Spike(step, loss, baseline))
    return spikes
