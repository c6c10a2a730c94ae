"""Evals: create (graders validated, item schema inferred), read, list, rename, delete (with their files)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import get_dataset
from app.errors import Conflict, Invalid, NotFound
from app.evals.graders import validate_testing_criteria
from app.evals.items import check_split, dataset_item_schema, eval_folder, remove_folder
from app.tables import Eval, Example
from app.tables.common import utcnow

MAX_LIST = 100
ORDER_BY = ("created_at", "updated_at")
SOURCE_TYPES = ("custom",)  # OpenAI's logs / stored_completions read OpenAI's stored traffic: nothing here has it
DEFAULT_ITEM_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def check_metadata(metadata: Any, param: str = "metadata") -> dict[str, str] | None:
    """OpenAI's metadata: at most 16 string pairs, keys up to 64 characters, values up to 512; None stays None."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise Invalid("metadata must be an object of at most 16 string pairs.", param=param)
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise Invalid("metadata keys are at most 64 characters and values strings of at most 512.", param=param)
    return dict(metadata)


def _clean_name(name: Any) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if name is not None and not isinstance(name, str):
        raise Invalid("The name must be a string.", param="name")
    if len(text) > 200:
        raise Invalid("An eval name can be at most 200 characters.", param="name")
    return text


def _name_taken(session: Session, name: str, other_than: str | None = None) -> bool:
    query = select(col(Eval.id)).where(func.lower(col(Eval.name)) == name.lower())
    if other_than is not None:
        query = query.where(col(Eval.id) != other_than)
    return session.exec(query.limit(1)).first() is not None


def _free_name(session: Session, base: str) -> str:
    """`base`, or `base (2)`, `base (3)`… : the first not taken (for names Tuneboard makes up)."""
    base = base[:190]
    name, n = base, 1
    while _name_taken(session, name):
        n += 1
        name = f"{base} ({n})"
    return name


def _check_source_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise Invalid("data_source_config must be an object.", param="data_source_config")
    kind = config.get("type")
    if kind not in SOURCE_TYPES:
        raise Invalid(
            f"data_source_config type {kind!r} isn't supported: use 'custom' (items described by item_schema).",
            param="data_source_config.type",
        )
    schema = config.get("item_schema", DEFAULT_ITEM_SCHEMA)
    if not isinstance(schema, dict):
        raise Invalid("item_schema must be a JSON Schema object.", param="data_source_config.item_schema")
    include = config.get("include_sample_schema", False)
    if not isinstance(include, bool):
        raise Invalid("include_sample_schema must be true or false.", param="data_source_config.include_sample_schema")
    return {"type": "custom", "item_schema": schema, "include_sample_schema": include}


def _default_split(session: Session, dataset_id: int) -> str:
    """'validation' when the dataset has held-out examples, else 'all'."""
    held_out = select(col(Example.id)).where(col(Example.dataset_id) == dataset_id, col(Example.split) == "validation")
    return "validation" if session.exec(held_out.limit(1)).first() is not None else "all"


def create_eval(
    session: Session,
    settings: Settings,
    *,
    name: str | None,
    testing_criteria: list[dict[str, Any]],
    data_source_config: dict[str, Any] | None = None,
    dataset_id: int | None = None,
    split: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Eval:
    """Create an eval. A dataset-backed eval with no split uses the validation split when there is one, else all.

    Names are unique (case-insensitive; Conflict); with no name one is made up from the dataset's name.
    """
    clean = _clean_name(name)
    criteria = validate_testing_criteria(testing_criteria)
    meta = check_metadata(metadata)
    chosen_split: str | None = None
    base_name = "Eval"
    if dataset_id is not None:
        dataset = get_dataset(session, dataset_id)
        chosen_split = check_split(split) if split else _default_split(session, dataset_id)
        base_name = f"{dataset.name} eval"
    elif split:
        raise Invalid("A split needs a dataset.", param="split")
    if data_source_config is not None:
        config = _check_source_config(data_source_config)
    elif dataset_id is not None and chosen_split is not None:
        schema = dataset_item_schema(session, dataset_id, chosen_split)
        config = {"type": "custom", "item_schema": schema, "include_sample_schema": True}
    else:
        config = {"type": "custom", "item_schema": DEFAULT_ITEM_SCHEMA, "include_sample_schema": True}
    if clean and _name_taken(session, clean):
        raise Conflict(f"An eval named {clean!r} already exists.", code="eval_name_taken", param="name")
    row = Eval(
        name=clean or _free_name(session, base_name),
        metadata_=meta,
        data_source_config=config,
        testing_criteria=criteria,
        dataset_id=dataset_id,
        split=chosen_split,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def get_eval(session: Session, eval_id: str) -> Eval:
    """The eval with this id, or NotFound."""
    row = session.get(Eval, eval_id) if isinstance(eval_id, str) else None
    if row is None:
        raise NotFound(f"No eval with id {eval_id}.", code="eval_not_found", param="eval_id")
    return row


def list_evals(
    session: Session,
    *,
    after: str | None = None,
    limit: int = 20,
    order: str = "desc",
    order_by: str = "created_at",
) -> tuple[list[Eval], bool]:
    """Evals by creation (or update) time, those after the eval `after`, and whether more follow."""
    if order not in ("asc", "desc"):
        raise Invalid("order must be 'asc' or 'desc'.", param="order")
    if order_by not in ORDER_BY:
        raise Invalid("order_by must be 'created_at' or 'updated_at'.", param="order_by")
    if not 1 <= limit <= MAX_LIST:
        raise Invalid(f"limit must be between 1 and {MAX_LIST}.", param="limit")
    stamp = col(Eval.created_at) if order_by == "created_at" else col(Eval.updated_at)
    ident = col(Eval.id)
    query = select(Eval)
    if after:
        anchor = session.get(Eval, after)
        if anchor is None:
            raise NotFound(f"No eval with id {after}.", code="eval_not_found", param="after")
        at = anchor.created_at if order_by == "created_at" else anchor.updated_at
        # (time, id) is a total order: evals made in the same instant are neither skipped nor repeated.
        if order == "desc":
            query = query.where(or_(stamp < at, and_(stamp == at, ident < anchor.id)))
        else:
            query = query.where(or_(stamp > at, and_(stamp == at, ident > anchor.id)))
    ordering = (stamp.desc(), ident.desc()) if order == "desc" else (stamp.asc(), ident.asc())
    rows = list(session.exec(query.order_by(*ordering).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def update_eval(
    session: Session, eval_id: str, *, name: str | None = None, metadata: dict[str, str] | None = None
) -> Eval:
    """Rename an eval and/or replace its metadata (None leaves a field as it is)."""
    row = get_eval(session, eval_id)
    if name is not None:
        clean = _clean_name(name)
        if not clean:
            raise Invalid("An eval needs a name.", param="name")
        if _name_taken(session, clean, other_than=row.id):
            raise Conflict(f"An eval named {clean!r} already exists.", code="eval_name_taken", param="name")
        row.name = clean
    if metadata is not None:
        row.metadata_ = check_metadata(metadata)
    row.updated_at = utcnow()
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def delete_eval(session: Session, settings: Settings, eval_id: str) -> None:
    """Delete an eval, its runs and their items (a run in progress stops: its worker finds it gone) and its files."""
    row = get_eval(session, eval_id)
    session.delete(row)
    session.commit()
    remove_folder(eval_folder(settings, eval_id))
