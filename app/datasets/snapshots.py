"""Snapshots: the exact JSONL a job trained on, written once at launch (sha256, count, bytes) and never changed;
beside a dataset's snapshot, the example id of each of its lines (`<id>.ids.json`)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.exporter import export_jsonl
from app.datasets.training_plan import train_condition
from app.errors import NotFound
from app.tables import Dataset, Example, Snapshot


def _export_jsonl(session: Session, dataset_id: int, split: str, ids: list[int]) -> Iterator[bytes]:
    """The dataset's valid examples of a split as JSONL lines, streamed; their ids are appended to `ids`.

    "train" means what `training_plan` counts as trained on (split "train" or none); the exporter's "train"
    leaves out examples without a split, so that one is read here, in the exporter's key order.
    """
    if split != "train":
        yield from export_jsonl(session, dataset_id, split, only_valid=True)
        # The exporter streams text columns only: the ids come from the same filter and order.
        same = select(col(Example.id)).where(col(Example.dataset_id) == dataset_id, col(Example.valid).is_(True))
        if split != "all":
            same = same.where(col(Example.split) == split)
        ids.extend(i for i in session.exec(same.order_by(col(Example.position), col(Example.id))) if i is not None)
        return
    query = select(Example).where(
        Example.dataset_id == dataset_id,
        col(Example.valid).is_(True),
        train_condition(),
    )
    query = query.order_by(col(Example.position), col(Example.id)).execution_options(yield_per=1000)
    for example in session.exec(query):
        assert example.id is not None  # a stored row
        ids.append(example.id)
        yield json.dumps(example.to_record(), ensure_ascii=False).encode() + b"\n"


def snapshot_path(settings: Settings, snapshot: Snapshot) -> Path:
    """Absolute path of a snapshot's file."""
    return settings.data_dir / snapshot.path


def snapshot_ids_path(settings: Settings, snapshot: Snapshot) -> Path:
    """Absolute path of the sidecar beside a dataset's snapshot: the example id of each line, as a JSON list."""
    return snapshot_path(settings, snapshot).with_suffix(".ids.json")


def snapshot_example_ids(settings: Settings, snapshot: Snapshot) -> list[int] | None:
    """The example id of each line of a snapshot (a job's per-example results name examples by them); None for a
    snapshot of an uploaded file or one written before the sidecar existed."""
    try:
        ids = json.loads(snapshot_ids_path(settings, snapshot).read_text())
    except (OSError, ValueError):
        return None
    return ids if isinstance(ids, list) and len(ids) == snapshot.n_examples else None


def _write_ids(settings: Settings, snapshot: Snapshot, ids: list[int]) -> None:
    target = snapshot_ids_path(settings, snapshot)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(ids))
    os.chmod(tmp, 0o444)
    os.replace(tmp, target)


def write_snapshot(
    session: Session,
    settings: Settings,
    data: bytes | Iterable[bytes],
    *,
    kind: str = "train",
    dataset_id: int | None = None,
) -> Snapshot:
    """Store JSONL (bytes, or an iterable of lines written as they come) as an immutable snapshot file and row.

    The row is not committed: the job launch commits both. The file is complete before it gets its name.
    """
    chunks = [data] if isinstance(data, bytes) else data
    snap = Snapshot(dataset_id=dataset_id, kind=kind, path="", sha256="", bytes=0, n_examples=0)
    relative = Path("snapshots") / f"{snap.id}.jsonl"
    target = settings.storage_path(*relative.parts)
    tmp = target.with_suffix(".tmp")
    digest = hashlib.sha256()
    size = examples = 0
    with tmp.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            examples += sum(1 for line in chunk.splitlines() if line.strip())
    os.chmod(tmp, 0o444)  # read-only: nothing should ever rewrite what a job trained on
    os.replace(tmp, target)
    snap.sha256, snap.bytes, snap.n_examples = digest.hexdigest(), size, examples
    snap.path = relative.as_posix()
    session.add(snap)
    return snap


def snapshot_dataset(
    session: Session, settings: Settings, dataset_id: int, split: str = "train", kind: str = "train"
) -> Snapshot:
    """Snapshot a dataset split's valid examples (split "train" includes examples without a split)."""
    if session.get(Dataset, dataset_id) is None:
        raise NotFound(f"No dataset with id {dataset_id}.", code="dataset_not_found", param="dataset_id")
    ids: list[int] = []
    snap = write_snapshot(
        session, settings, _export_jsonl(session, dataset_id, split, ids), kind=kind, dataset_id=dataset_id
    )
    if len(ids) == snap.n_examples:  # an example changed between the two reads: no sidecar rather than a wrong one
        _write_ids(settings, snap, ids)
    return snap


def get_snapshot(session: Session, snapshot_id: str) -> Snapshot:
    """A snapshot by id, or NotFound."""
    snap = session.get(Snapshot, snapshot_id)
    if snap is None:
        raise NotFound(f"No snapshot with id {snapshot_id!r}.", code="snapshot_not_found")
    return snap
