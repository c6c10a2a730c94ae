"""Which kind of examples a job's data holds (chat or preference pairs) and whether the method fits it: a DPO job
trains on preference data only, a supervised job on chat data only (OpenAI refuses the mix the same way)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.errors import Invalid
from app.tables import Dataset, Snapshot, UploadedFile
from app.tables.dataset import PREFERENCE, SUPERVISED

DPO = "dpo"
PREFERENCE_KEYS = ("input", "preferred_output", "non_preferred_output")
CODE = "invalid_training_file"
_SNIFF_LINES = 50  # lines read to find the first JSON object (a file of blank or broken lines is left to the check)


def record_kind(record: Any) -> str:
    """PREFERENCE for OpenAI's DPO shape, SUPERVISED for anything else (a chat, or a line the checks refuse)."""
    return PREFERENCE if isinstance(record, dict) and any(k in record for k in PREFERENCE_KEYS) else SUPERVISED


def file_kind(path: Path) -> str | None:
    """The kind of a JSONL file's first JSON object; None when none is found near its start."""
    try:
        with Path(path).open("rb") as handle:
            for _, line in zip(range(_SNIFF_LINES), handle, strict=False):
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    continue
                if isinstance(record, dict):
                    return record_kind(record)
    except OSError:
        return None
    return None


def _kind_of(
    session: Session, settings: Settings, dataset_id: int | None, snapshot_id: str | None, file_id: str | None
) -> str | None:
    if dataset_id is not None:
        dataset = session.get(Dataset, dataset_id)
        return dataset.kind if dataset is not None else None
    if file_id is not None:
        upload = session.get(UploadedFile, file_id)
        return file_kind(settings.data_dir / upload.path) if upload is not None else None
    if snapshot_id is not None:
        snapshot = session.get(Snapshot, snapshot_id)
        return file_kind(settings.data_dir / snapshot.path) if snapshot is not None else None
    return None


def _refuse(method_type: str, kind: str, param: str, what: str) -> None:
    if method_type == DPO and kind != PREFERENCE:
        raise Invalid(
            f"A DPO job needs preference examples (input, preferred_output, non_preferred_output), but {what} "
            "holds chat examples. Pick a preference dataset, or choose supervised fine-tuning.",
            code=CODE,
            param=param,
        )
    if method_type != DPO and kind == PREFERENCE:
        raise Invalid(
            f"{what[0].upper()}{what[1:]} holds preference examples (for DPO), which supervised fine-tuning cannot "
            'train on. Choose method {"type": "dpo"} or pick a chat dataset.',
            code=CODE,
            param=param,
        )


def check_method_fits(session: Session, settings: Settings, request: Any, method_type: str) -> None:
    """Invalid when the training (or validation) data is of the other kind than the method trains on."""
    sources = (
        ("training", request.dataset_id, request.training_snapshot, request.training_file),
        ("validation", request.validation_dataset_id, request.validation_snapshot, request.validation_file),
    )
    for role, dataset_id, snapshot_id, file_id in sources:
        kind = _kind_of(session, settings, dataset_id, snapshot_id, file_id)
        if kind is None:
            continue
        if file_id is not None:
            param, what = f"{role}_file", f"the {role} file {file_id}"
        elif dataset_id is not None:
            param = "dataset_id" if role == "training" else "validation_dataset_id"
            what = f"the {role} dataset"
        else:
            param, what = f"{role}_snapshot", f"the {role} snapshot {snapshot_id}"
        _refuse(method_type, kind, param, what)
