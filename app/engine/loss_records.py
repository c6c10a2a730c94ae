"""The files a job leaves about its examples (no torch here): each example's final loss, and each step's batch.

In the job's output directory:
    example_losses.jsonl   one line per example that has trained tokens, written once after the last step:
                           {"split": "train"|"validation", "line": int, "loss": float, "tokens": int}
                           `line` is the example's 0-based index among its file's non-blank lines (a snapshot's
                           example order), `loss` its mean loss per trained (assistant) token, `tokens` how many.
    batches.jsonl          one line per optimizer step, appended as it is taken: {"step": int, "lines": [int]}
                           (the training file lines of that step's batch, so a loss spike can name its examples).
A resumed job keeps the batches up to its checkpoint's step and records the later ones again (the same batches:
the order is fixed by the seed), so a reader takes the last line of each step.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

LOSSES_FILE = "example_losses.jsonl"
BATCHES_FILE = "batches.jsonl"
TRAIN, VALIDATION = "train", "validation"


@dataclass(frozen=True)
class ExampleLoss:
    """One example's final loss: its split, its line in that split's file, mean loss per trained token, tokens."""

    split: str
    line: int
    loss: float
    tokens: int


class BatchLog:
    """Appends each optimizer step's training lines to batches.jsonl (trimmed to `resumed_step` on resume)."""

    def __init__(self, out_dir: Path, resumed_step: int = 0):
        self.path = Path(out_dir) / BATCHES_FILE
        kept = [line for line in _read_lines(self.path) if resumed_step and line.get("step", 0) <= resumed_step]
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text("".join(json.dumps(line) + "\n" for line in kept))
        partial.replace(self.path)  # a kill mid-write leaves the old file, never half a one

    def record(self, step: int, lines: list[int]) -> None:
        """Append one step's batch (training file lines)."""
        with self.path.open("a") as handle:
            handle.write(json.dumps({"step": step, "lines": lines}) + "\n")


def write_example_losses(path: Path, losses: list[ExampleLoss]) -> Path:
    """Write example_losses.jsonl beside its final name, then rename: a reader never sees half of it."""
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w") as handle:
        for item in losses:
            handle.write(json.dumps(asdict(item)) + "\n")
    os.replace(partial, path)
    return path


def read_example_losses(path: Path) -> list[ExampleLoss]:
    """The examples' final losses in file order (empty when the file is missing); malformed lines are skipped."""
    out = []
    for line in _read_lines(path):
        try:
            out.append(ExampleLoss(str(line["split"]), int(line["line"]), float(line["loss"]), int(line["tokens"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def read_batches(path: Path) -> dict[int, list[int]]:
    """Each step's training file lines (the last record of a step wins: a resume records its steps again)."""
    batches: dict[int, list[int]] = {}
    for line in _read_lines(path):
        step, lines = line.get("step"), line.get("lines")
        if isinstance(step, int) and isinstance(lines, list):
            batches[step] = [int(x) for x in lines if isinstance(x, int)]
    return batches


def _read_lines(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file; a torn last line (a killed writer) or any other bad line is skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    out = []
    for raw in text.splitlines():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
