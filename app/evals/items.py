"""Eval items: made from a dataset's examples or an uploaded JSONL, frozen into a run's folder when it is created.

An item is a dict. From a dataset example it is `{"messages": [the conversation before the last assistant turn],
"reference": <that assistant's text>, "example_id": N, "tools"?: [...], **the example's other fields}`; from a
JSONL file, each line's `{"item": {...}}` (OpenAI's shape) or the bare object.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import get_dataset
from app.errors import Invalid, NotFound
from app.tables import Example, UploadedFile

SPLITS = ("validation", "train", "all")
MAX_LISTED_ERRORS = 20  # bad lines named in one message; the rest are counted
SCHEMA_SAMPLE = 1000  # examples read to infer a dataset's item schema
_OWN_KEYS = ("messages", "reference", "example_id", "tools")
_JSON_TYPES = (
    (bool, "boolean"),  # before int: True is an int too
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def check_split(split: Any) -> str:
    """'validation', 'train' or 'all'; anything else is refused."""
    if split not in SPLITS:
        raise Invalid(f"Unknown split {split!r}: use 'validation', 'train' or 'all'.", param="split")
    return str(split)


def _examples(session: Session, dataset_id: int, split: str, limit: int | None = None) -> Iterable[Example]:
    """A dataset's examples of a split in position order ("train" also takes examples with no split)."""
    query = select(Example).where(col(Example.dataset_id) == dataset_id)
    if split == "validation":
        query = query.where(col(Example.split) == "validation")
    elif split == "train":
        query = query.where(or_(col(Example.split) == "train", col(Example.split).is_(None)))
    query = query.order_by(col(Example.position), col(Example.id))
    if limit is not None:
        query = query.limit(limit)
    return session.exec(query)


def content_text(content: Any) -> str:
    """A message's content as plain text: a string as it is, the text parts of a list joined, nothing else."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def example_item(example: Example) -> dict[str, Any] | None:
    """The eval item of one example, or None when it has no prompt (nothing before its last assistant turn)."""
    messages = [m for m in (example.messages or []) if isinstance(m, dict)]
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    prompt = messages if last is None else messages[:last]
    if not prompt:
        return None
    answer = messages[last] if last is not None else {}
    item: dict[str, Any] = {
        "messages": prompt,
        "reference": content_text(answer.get("content")),
        "example_id": example.id,
    }
    if answer.get("tool_calls"):
        item["reference_tool_calls"] = answer["tool_calls"]
    if example.tools is not None:
        item["tools"] = example.tools
    for key, value in (example.extra or {}).items():
        item.setdefault(key, value)
    return item


def items_from_dataset(session: Session, dataset_id: int, split: str | None) -> list[dict[str, Any]]:
    """The items of a dataset's split ('validation', 'train', or 'all'/None), in the dataset's order."""
    get_dataset(session, dataset_id)
    chosen = check_split(split or "all")
    return [item for example in _examples(session, dataset_id, chosen) if (item := example_item(example))]


def _json_type(value: Any) -> str | None:
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return None


def dataset_item_schema(session: Session, dataset_id: int, split: str) -> dict[str, Any]:
    """The JSON Schema of a dataset's items: the fixed fields plus the example fields seen in its first examples."""
    properties: dict[str, Any] = {
        "messages": {"type": "array", "items": {"type": "object"}},
        "reference": {"type": "string"},
        "example_id": {"type": "integer"},
    }
    for example in _examples(session, dataset_id, split, SCHEMA_SAMPLE):
        if example.tools is not None:
            properties.setdefault("tools", {"type": "array"})
        for key, value in (example.extra or {}).items():
            if key in _OWN_KEYS:
                continue
            kind = _json_type(value)
            known = properties.setdefault(key, {"type": kind} if kind else {})
            if kind and known.get("type") not in (None, kind):
                known.pop("type")  # fields of mixed types are left untyped
    return {"type": "object", "properties": properties, "required": ["messages", "reference"]}


def _errors_message(errors: list[str]) -> str:
    shown = "; ".join(errors[:MAX_LISTED_ERRORS])
    more = len(errors) - MAX_LISTED_ERRORS
    return f"{shown}; and {more} more" if more > 0 else shown


def _line_item(value: Any) -> dict[str, Any] | None:
    """The item of one parsed line: `{"item": {...}}` or a bare object; None when there is no item object."""
    if not isinstance(value, dict):
        return None
    if "item" in value:
        return value["item"] if isinstance(value["item"], dict) else None
    return value


def items_from_jsonl(lines: Iterable[str | bytes]) -> list[dict[str, Any]]:
    """The items of a JSONL file (blank lines skipped); Invalid naming every bad line ("line 3: not JSON")."""
    items: list[dict[str, Any]] = []
    errors: list[str] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            errors.append(f"line {number}: not JSON")
            continue
        item = _line_item(value)
        if item is None:
            errors.append(f"line {number}: no item object")
            continue
        items.append(item)
    if errors:
        raise Invalid(
            f"The file has {len(errors)} bad line{'s' if len(errors) != 1 else ''}: {_errors_message(errors)}.",
            code="invalid_file",
            param="file",
            details=errors,
        )
    if not items:
        raise Invalid("The file has no items: give one JSON object per line.", code="invalid_file", param="file")
    return items


def items_from_content(content: Any, param: str = "data_source.source.content") -> list[dict[str, Any]]:
    """The items of OpenAI's `file_content` source: a list of `{"item": {...}, "sample"?: {...}}`."""
    if not isinstance(content, list) or not content:
        raise Invalid("Give a non-empty list of {'item': {...}} objects.", param=param)
    items = []
    for index, row in enumerate(content):
        item = row.get("item") if isinstance(row, dict) else None
        if not isinstance(item, dict):
            raise Invalid("Each entry is an object with an `item` object.", param=f"{param}[{index}]")
        items.append(item)
    return items


def items_from_file_id(session: Session, settings: Settings, file_id: str) -> list[dict[str, Any]]:
    """The items of a file uploaded through /v1/files (its bytes as uploaded, read line by line)."""
    row = session.get(UploadedFile, file_id)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"No such File object: {file_id}", code="file_not_found", param="data_source.source.id")
    path = settings.data_dir / row.path
    if not row.path or not path.is_file():
        raise NotFound(
            f"The content of {file_id} is no longer stored.", code="file_not_found", param="data_source.source.id"
        )
    with path.open("rb") as handle:
        try:
            return items_from_jsonl(handle)
        except Invalid as exc:
            raise Invalid(exc.message, code=exc.code, param="data_source.source.id", details=exc.details) from None


# -- frozen items ---------------------------------------------------------------------------------------------------
def eval_folder(settings: Settings, eval_id: str) -> Path:
    """Where an eval keeps its files (its runs' frozen items)."""
    return settings.data_dir / "evals" / eval_id


def run_folder(settings: Settings, eval_id: str, run_id: str) -> Path:
    """Where a run keeps its files."""
    return eval_folder(settings, eval_id) / "runs" / run_id


def items_path(settings: Settings, eval_id: str, run_id: str) -> Path:
    """The run's frozen items, one JSON object a line."""
    return run_folder(settings, eval_id, run_id) / "items.jsonl"


def freeze_items(settings: Settings, eval_id: str, run_id: str, items: list[dict[str, Any]]) -> Path:
    """Write a run's items once (complete before the file gets its name), so the run reads the same items later."""
    target = items_path(settings, eval_id, run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    with partial.open("w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())
    partial.replace(target)
    return target


def load_items(settings: Settings, eval_id: str, run_id: str) -> list[dict[str, Any]]:
    """A run's frozen items, in order; NotFound when the file is gone."""
    path = items_path(settings, eval_id, run_id)
    if not path.is_file():
        raise NotFound(f"The items of run {run_id} are no longer stored.", code="items_not_found")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def remove_folder(path: Path) -> None:
    """Remove a folder of eval files (an eval's or a run's), if it is there."""
    shutil.rmtree(path, ignore_errors=True)
