"""The examples a job's model could not learn: each example's final loss (written by the local engine after the
last step, app/engine/loss_records.py) mapped back to the dataset's examples through the snapshots' id sidecars,
highest first, and the loss spikes of the job's chart (app.jobs.loss_spikes) with the examples of their batches.

The preview is the text the job trained on (the snapshot's line); an example deleted since says so, one edited
since is marked as changed. A job launched from an uploaded file has no example ids: its lines are listed alone.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.snapshots import snapshot_example_ids, snapshot_path
from app.engine.loss_records import (
    BATCHES_FILE,
    LOSSES_FILE,
    TRAIN,
    VALIDATION,
    ExampleLoss,
    read_batches,
    read_example_losses,
)
from app.errors import Invalid
from app.jobs.events import get_job
from app.jobs.loss_spikes import Spike, find_spikes
from app.jobs.monitoring import metric_series
from app.tables import Example, Job, Snapshot

TOP = 20  # examples listed on the job page
MAX_LIMIT = 1000
MAX_SPIKES = 10  # the biggest spikes marked on the chart
SPIKE_EXAMPLES = 8  # the highest-loss examples of a spike's batch that are listed
PREVIEW_CHARS = 140

READY, PENDING, MISSING, UNSUPPORTED = "ready", "pending", "missing", "unsupported"
STATE_TEXT = {
    READY: "",
    PENDING: "Each example's final loss is measured after the last step.",
    MISSING: "This job recorded no per-example losses: it ended before its last step, or ran before Tuneboard "
    "recorded them.",
    UNSUPPORTED: "Per-example losses are recorded by the local engine only.",
}


@dataclass
class LossExample:
    """One example's final loss, with where it came from: the example (when known) and the text it trained on."""

    split: str
    line: int  # 0-based line of the split's snapshot
    loss: float
    tokens: int
    example_id: int | None = None
    dataset_id: int | None = None
    deleted: bool = False  # the snapshot named an example that no longer exists
    changed: bool = False  # edited since the job trained on it
    preview: str = ""


@dataclass
class LossSpike:
    """A loss spike on the chart: its step, its loss and the median around it, and the examples of its batch."""

    step: int
    loss: float
    baseline: float
    batch_size: int = 0  # training examples in its batch (the SPIKE_EXAMPLES worst are listed)
    examples: list[LossExample] = field(default_factory=list)


@dataclass
class ExampleLosses:
    """A job's per-example losses: the state (ready, pending, missing, unsupported), counts, highest, spikes."""

    job_id: str
    state: str
    message: str
    n_train: int = 0
    n_validation: int = 0
    highest: list[LossExample] = field(default_factory=list)
    spikes: list[LossSpike] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON of /api/jobs/{id}/example_losses."""
        return {"object": "job.example_losses", **asdict(self)}

    def chart_spikes(self) -> list[dict[str, Any]]:
        """The spikes as the loss chart marks them (app/static/chart.js): step, loss, a tooltip."""
        out = []
        for spike in self.spikes:
            worst = ", ".join(f"line {x.line + 1} ({x.loss:.2f})" for x in spike.examples[:3])
            title = f"Loss spike at step {spike.step}: {spike.loss:.3f}, the steps around it {spike.baseline:.3f}."
            out.append({"step": spike.step, "loss": spike.loss, "title": title + (f" Batch: {worst}" if worst else "")})
        return out


def job_example_losses(
    session: Session, settings: Settings, job_id: str, limit: int = TOP, split: str | None = None
) -> ExampleLosses:
    """The job's examples with the highest final loss (of one split, or both) and its loss spikes."""
    if split not in (None, TRAIN, VALIDATION):
        raise Invalid("split must be train or validation.", param="split")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}.", param="limit")
    job = get_job(session, job_id)
    out_dir = settings.data_dir / "jobs" / job.id
    losses = read_example_losses(out_dir / LOSSES_FILE)
    if not losses:
        state = UNSUPPORTED if job.provider != "local" else (MISSING if job.status.is_terminal else PENDING)
        return ExampleLosses(job.id, state, STATE_TEXT[state])
    highest = sorted((x for x in losses if split in (None, x.split)), key=lambda x: -x.loss)[:limit]
    spikes = _spikes(session, job.id, out_dir, losses)
    shown = highest + [x for _, _, batch in spikes for x in batch]
    sources = _sources(session, settings, job, {(x.split, x.line) for x in shown})

    def described(item: ExampleLoss) -> LossExample:
        return LossExample(item.split, item.line, item.loss, item.tokens, **sources.get((item.split, item.line), {}))

    return ExampleLosses(
        job.id,
        READY,
        STATE_TEXT[READY],
        n_train=sum(x.split == TRAIN for x in losses),
        n_validation=sum(x.split == VALIDATION for x in losses),
        highest=[described(x) for x in highest],
        spikes=[
            LossSpike(s.step, s.loss, s.baseline, size, [described(x) for x in batch]) for s, size, batch in spikes
        ],
    )


def _spikes(
    session: Session, job_id: str, out_dir: Path, losses: list[ExampleLoss]
) -> list[tuple[Spike, int, list[ExampleLoss]]]:
    """The biggest spikes of the job's training loss (in step order), each with its batch's size and its
    SPIKE_EXAMPLES highest-loss examples."""
    points = [(p["step"], p["train_loss"]) for p in metric_series(session, job_id) if "train_loss" in p]
    spikes = sorted(find_spikes(points), key=lambda s: -s.ratio)[:MAX_SPIKES]
    if not spikes:
        return []
    batches = read_batches(out_dir / BATCHES_FILE)
    train = {x.line: x for x in losses if x.split == TRAIN}
    out = []
    for spike in sorted(spikes, key=lambda s: s.step):
        batch = [train[line] for line in batches.get(spike.step, []) if line in train]
        out.append((spike, len(batch), sorted(batch, key=lambda x: -x.loss)[:SPIKE_EXAMPLES]))
    return out


def _sources(
    session: Session, settings: Settings, job: Job, wanted: set[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, Any]]:
    """For each (split, line): its example id and dataset, deleted or changed since, and a preview of the line."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for split, snapshot_id in ((TRAIN, job.training_snapshot_id), (VALIDATION, job.validation_snapshot_id)):
        lines = {line for s, line in wanted if s == split}
        snapshot = session.get(Snapshot, snapshot_id) if snapshot_id and lines else None
        if snapshot is None:
            continue
        records = _snapshot_records(snapshot_path(settings, snapshot), lines)
        ids = snapshot_example_ids(settings, snapshot) or []
        named = {line: ids[line] for line in lines if line < len(ids)}
        found = {e.id: e for e in session.exec(select(Example).where(col(Example.id).in_(list(named.values())))).all()}
        for line in lines:
            record = records.get(line)
            info: dict[str, Any] = {"preview": preview(record) if record is not None else ""}
            if line in named:
                example = found.get(named[line])
                info["example_id"] = named[line]
                info["dataset_id"] = example.dataset_id if example else snapshot.dataset_id
                info["deleted"] = example is None
                info["changed"] = example is not None and record is not None and example.to_record() != record
            out[(split, line)] = info
    return out


def _snapshot_records(path: Path, lines: set[int]) -> dict[int, dict]:
    """The records on these (0-based, non-blank) lines of a snapshot, read in one pass."""
    out: dict[int, dict] = {}
    if not lines:
        return out
    last = max(lines)
    try:
        with path.open(encoding="utf-8") as handle:
            index = 0
            for raw in handle:
                if not raw.strip():
                    continue
                if index in lines:
                    with contextlib.suppress(ValueError):  # a snapshot line is valid JSON; a broken one shows nothing
                        out[index] = json.loads(raw)
                if index >= last:
                    break
                index += 1
    except OSError:
        pass
    return out


def preview(record: dict) -> str:
    """A one-line preview of a chat record: its last user turn, then what the assistant answered to it."""
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list):
        return ""
    question = answer = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "user":
            question, answer = _text(message), ""
        elif message.get("role") == "assistant" and not answer:
            answer = _text(message)
    text = f"{question} → {answer}" if question else answer
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if not content and message.get("tool_calls"):
        names = [str((c.get("function") or {}).get("name", "")) for c in message["tool_calls"] if isinstance(c, dict)]
        return "calls " + ", ".join(names)
    return str(content or "")
