"""A dataset's kind (supervised chat examples or preference pairs) as imports and pages speak of it."""

from __future__ import annotations

from app.errors import Invalid
from app.tables.dataset import DATASET_KINDS, PREFERENCE, SUPERVISED

# What a dataset of each kind holds, in words.
HOLDS = {SUPERVISED: "chat examples (`messages`)", PREFERENCE: "preference pairs (`input`, `preferred_output`)"}
LABELS = {SUPERVISED: "Supervised", PREFERENCE: "Preference (DPO)"}


def checked_kind(kind: str | None) -> str:
    """A dataset kind from a form or the API ('' or None: supervised); Invalid for anything else."""
    kind = (kind or SUPERVISED).strip().lower()
    if kind not in DATASET_KINDS:
        raise Invalid(f"Unknown dataset kind {kind!r}: use 'supervised' or 'preference'.", param="kind")
    return kind


def kind_mismatch(dataset_kind: str, file_kind: str, line: int | None = None) -> Invalid:
    """The refusal of a file whose examples are of the other kind than its dataset's."""
    where = f"line {line:,} of the file" if line else "the file"
    return Invalid(
        f"This dataset holds {HOLDS[dataset_kind]}, but {where} holds {HOLDS[file_kind]}: "
        f"import the file into a {file_kind} dataset (or a new one).",
        code="dataset_kind_mismatch",
        param="file",
    )
