"""The job form's method: supervised for a chat dataset, DPO (with its beta) for a preference dataset."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.errors import Invalid
from app.tables import Dataset
from app.tables.dataset import PREFERENCE

SUPERVISED, DPO = "supervised", "dpo"
METHOD_LABELS = {SUPERVISED: "Supervised (imitate the answers)", DPO: "DPO (prefer the preferred answers)"}


def dataset_kind(session: Session, dataset_id: int | None) -> str | None:
    """The chosen dataset's kind, or None before one is chosen."""
    dataset = session.get(Dataset, dataset_id) if dataset_id is not None else None
    return dataset.kind if dataset is not None else None


def method_section(kind: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """What the method field offers: DPO only for a preference dataset, supervised only for a chat one."""
    method = DPO if kind == PREFERENCE else SUPERVISED
    # changed: the form shows another method (its dataset changed kind), so the estimate's refresh swaps the field;
    # otherwise it is left alone, so a refresh answering an earlier change never undoes a beta typed since.
    changed = values.get("method") != method
    values["method"] = method
    values.setdefault("beta", "auto")
    return {"method": method, "label": METHOD_LABELS[method], "beta": values["beta"], "changed": changed}


def method_request(values: dict[str, Any]) -> dict[str, Any] | None:
    """The form's method in OpenAI's shape for JobRequest.method (None: supervised, the default)."""
    if values.get("method") != DPO:
        return None
    raw = str(values.get("beta", "auto") or "auto").strip().lower()
    beta: float | str = "auto"
    if raw != "auto":
        try:
            beta = float(raw)
        except ValueError:
            raise Invalid(f'beta must be "auto" or a number; got {raw!r}.', param="beta") from None
        if not 0 < beta <= 2:
            raise Invalid("beta must be greater than 0 and at most 2.", param="beta")
    return {"type": DPO, DPO: {"hyperparameters": {"beta": beta}}}
