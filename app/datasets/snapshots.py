"""Snapshots: the exact JSONL a job trained on, written once at launch (sha256, count, bytes) and never changed."""

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


def _export_jsonl(session: Session, dataset_id: int, split: str) -> Iterator[bytes]:
    """The dataset's valid examples of a split as JSONL lines, streamed.

    "train" means what `training_plan` counts as trained on (split "train" or none); the exporter's "train"
    leaves out examples without a split, so that one is read here, in the exporter's key order.
    """
    if split != "train":
        yield from export_jsonl(session, dataset_id, split, only_valid=True)
        return
    query = select(Example).where(
        Example.dataset_id == dataset_id,
        col(Example.valid).is_(True),
        train_condition(),
    )
    query = query.order_by(col(Example.position), col(Example.id)).execution_options(yield_per=1000)
    for example in session.exec(query):
        yield json.dumps(example.to_record(), ensure_ascii=False).encode() + b"\n"


def snapshot_path(settings: Settings, snapshot: Snapshot) -> Path:
    """Absolute path of a snapshot's file."""
    return settings.data_dir / snapshot.path


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
    return write_snapshot(
        session, settings, _export_jsonl(session, dataset_id, split), kind=kind, dataset_id=dataset_id
    )


def get_snapshot(session: Session, snapshot_id: str) -> Snapshot:
    """A snapshot by id, or NotFound."""
    snap = session.get(Snapshot, snapshot_id)
    if snap is None:
        raise NotFound(f"No snapshot with id {snapshot_id!r}.", code="snapshot_not_found")
    return snap
