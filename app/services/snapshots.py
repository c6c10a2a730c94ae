"""Snapshots: the exact JSONL a job trained on, written once at launch (sha256, count, bytes) and never changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.config import Settings
from app.models import Dataset, Example, Snapshot
from app.services.errors import NotFound


def _export_jsonl(session: Session, dataset_id: int, split: str) -> bytes:
    """The dataset's valid examples of a split as JSONL bytes.

    "train" means split "train" or no split (as the validation report counts them); the exporter's "train"
    leaves out examples without a split, so that one is read here, in the exporter's key order.
    """
    if split != "train":
        from app.services.exporter import export_jsonl

        return b"".join(export_jsonl(session, dataset_id, split, only_valid=True))
    query = select(Example).where(Example.dataset_id == dataset_id, col(Example.valid).is_(True),
                                  or_(Example.split == "train", col(Example.split).is_(None)))
    rows = session.exec(query.order_by(col(Example.position), col(Example.id)))
    return b"".join(json.dumps(ex.to_record(), ensure_ascii=False).encode() + b"\n" for ex in rows)


def snapshot_path(settings: Settings, snapshot: Snapshot) -> Path:
    """Absolute path of a snapshot's file."""
    return settings.data_dir / snapshot.path


def write_snapshot(session: Session, settings: Settings, data: bytes, *, kind: str = "train",
                   dataset_id: int | None = None) -> Snapshot:
    """Store bytes as an immutable snapshot file and row (not committed: the job launch commits both)."""
    digest = hashlib.sha256(data).hexdigest()
    snap = Snapshot(dataset_id=dataset_id, kind=kind, path="", sha256=digest, bytes=len(data),
                    n_examples=sum(1 for line in data.splitlines() if line.strip()))
    relative = Path("snapshots") / f"{snap.id}.jsonl"
    target = settings.storage_path(*relative.parts)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o444)  # read-only: nothing should ever rewrite what a job trained on
    os.replace(tmp, target)
    snap.path = relative.as_posix()
    session.add(snap)
    return snap


def snapshot_dataset(session: Session, settings: Settings, dataset_id: int, split: str | None = "train",
                     kind: str = "train") -> Snapshot:
    """Snapshot a dataset split's valid examples (split "train" includes examples without a split)."""
    if session.get(Dataset, dataset_id) is None:
        raise NotFound(f"No dataset with id {dataset_id}.", code="dataset_not_found", param="dataset_id")
    return write_snapshot(session, settings, _export_jsonl(session, dataset_id, split), kind=kind,
                          dataset_id=dataset_id)


def get_snapshot(session: Session, snapshot_id: str) -> Snapshot:
    """A snapshot by id, or NotFound."""
    snap = session.get(Snapshot, snapshot_id)
    if snap is None:
        raise NotFound(f"No snapshot with id {snapshot_id!r}.", code="snapshot_not_found")
    return snap


def read_snapshot(settings: Settings, snapshot: Snapshot) -> bytes:
    """The snapshot's bytes."""
    return snapshot_path(settings, snapshot).read_bytes()
