"""Preference pairs made in the browser: "prefer this answer" in the compare view (and after a blind A/B review)
writes one DPO example — the conversation up to the last user turn, the chosen answer preferred, the other one
rejected — into a preference dataset, an existing one or one made on the spot.

- preference_datasets(session) -> list[Dataset]            (the datasets a pair can go to)
- target_dataset(session, dataset_id, new_name) -> Dataset   (an existing preference dataset, or a new one)
- pair_record(messages_json, system, tools, preferred, rejected) -> record   (OpenAI's DPO line)
- save_preferred(session, dataset_id, new_name, record, limits) -> (Example, Dataset)
- pairs_from_review(session, review_id) -> list[record]      (the votes of a blind review that chose a side)
- save_review_pairs(session, review_id, dataset_id, new_name, limits) -> (count, Dataset)

Pairs are added through the examples service (app.datasets.examples.add_example): checked against the limits in
force and validated on arrival, like every example.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from app.datasets.datasets import get_dataset, new_dataset
from app.datasets.examples import add_example
from app.datasets.limits import Limits
from app.errors import Invalid
from app.evals import reviews
from app.playground.conversations import clean_messages, clean_tools, column_history
from app.tables import Dataset, Example
from app.tables.common import stored_id
from app.tables.dataset import PREFERENCE

NEW = "new"  # the dataset choice that makes a new preference dataset
DEFAULT_NAME = "Playground preferences"


def preference_datasets(session: Session, exclude: int | None = None) -> list[Dataset]:
    """Every preference dataset by name (without `exclude`): where a pair can be saved."""
    query = select(Dataset).where(col(Dataset.kind) == PREFERENCE)
    if exclude is not None:
        query = query.where(col(Dataset.id) != exclude)
    return list(session.exec(query.order_by(col(Dataset.name))))


def target_dataset(session: Session, dataset_id: str | int | None, new_name: str = "") -> Dataset:
    """The dataset a pair goes to: `dataset_id` when it names a preference dataset; "new" (or nothing) makes one
    named `new_name` in the caller's transaction. A supervised dataset is refused: its examples have one answer."""
    choice = str(dataset_id).strip() if dataset_id is not None else ""
    if choice in ("", NEW):
        return new_dataset(session, (new_name or "").strip() or DEFAULT_NAME, kind=PREFERENCE)
    if not (choice.isascii() and choice.isdigit()):
        raise Invalid("Pick a preference dataset, or a new one.", param="dataset_id")
    dataset = get_dataset(session, int(choice))
    if not dataset.is_preference:
        raise Invalid(
            f"“{dataset.name}” is a supervised dataset: a preference pair goes to a preference dataset.",
            param="dataset_id",
        )
    return dataset


def answer_output(message: dict[str, Any]) -> list[dict[str, Any]]:
    """An answer as a DPO output: one assistant message, its tool calls kept."""
    out: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    return [out]


def _last_reply(history: list[dict[str, Any]], who: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A column's history split into the conversation up to its last user turn and the reply to that turn."""
    last_user = max((i for i, m in enumerate(history) if m["role"] == "user"), default=None)
    if last_user is None:
        raise Invalid("There is nothing to prefer yet: chat first.", param="messages")
    reply = history[last_user + 1 :]
    if not reply:
        raise Invalid(f"{who} has not answered your last message yet.", param="messages")
    if len(reply) > 1:
        # A reply that went through tool results is several messages; a DPO output is one assistant message.
        raise Invalid(
            f"{who}'s answer to your last message went through tool calls: a preference pair needs one answer each.",
            param="messages",
        )
    return history[: last_user + 1], reply[0]


def pair_record(
    messages_json: str, system: str = "", tools: str = "", preferred: int = 0, rejected: int = 1
) -> dict[str, Any]:
    """OpenAI's DPO line from the compare view: the preferred column's conversation up to the last user turn, its
    answer preferred and the `rejected` column's answer to the same turn not."""
    if preferred == rejected:
        raise Invalid("Pick two different answers: one preferred, one rejected.", param="rejected")
    try:
        raw = json.loads(messages_json or "[]")
    except (ValueError, RecursionError):  # malformed, or nested deeper than json can recurse
        raise Invalid("The conversation could not be read; reload the page and try again.", param="messages") from None
    messages = clean_messages(raw)
    given, chosen = _last_reply(column_history(messages, preferred, system or ""), f"Model {preferred + 1}")
    _, other = _last_reply(column_history(messages, rejected, system or ""), f"Model {rejected + 1}")
    record: dict[str, Any] = {"input": {"messages": given}}
    checked = clean_tools(tools)
    if checked:
        record["input"]["tools"] = checked
    record["preferred_output"] = answer_output(chosen)
    record["non_preferred_output"] = answer_output(other)
    return record


def save_preferred(
    session: Session,
    dataset_id: str | int | None,
    new_name: str,
    record: dict[str, Any],
    limits: Limits | None = None,
) -> tuple[Example, Dataset]:
    """Save one pair to the chosen (or a new) preference dataset; the example and its dataset."""
    dataset = target_dataset(session, dataset_id, new_name)
    example = add_example(
        session, stored_id(dataset), record, note="preferred in the playground", limits=limits or Limits()
    )
    session.refresh(dataset)
    return example, dataset


def pairs_from_review(session: Session, review_id: str) -> list[dict[str, Any]]:
    """A DPO record per vote of a blind review that chose a side (ties say nothing about which is better)."""
    out = []
    for vote, item in reviews.votes_shown(session, review_id):
        if vote.choice not in ("a", "b"):
            continue
        text_a, text_b = (item.left, item.right) if vote.a_first else (item.right, item.left)
        better, worse = (text_a, text_b) if vote.choice == "a" else (text_b, text_a)
        if not item.prompt or item.prompt[-1]["role"] != "user":
            continue  # an output item without its conversation (or one ending elsewhere) makes no DPO input
        out.append(
            {
                "input": {"messages": [dict(m) for m in item.prompt]},
                "preferred_output": [{"role": "assistant", "content": better}],
                "non_preferred_output": [{"role": "assistant", "content": worse}],
            }
        )
    return out


def decided_votes(session: Session, review_id: str) -> int:
    """How many votes of a review picked a side (each can become a pair)."""
    results = reviews.review_results(session, review_id)
    return results.wins + results.losses


def save_review_pairs(
    session: Session, review_id: str, dataset_id: str | int | None, new_name: str, limits: Limits | None = None
) -> tuple[int, Dataset]:
    """Save every decided vote of a review as a pair in the chosen (or a new) preference dataset; how many, where."""
    records = pairs_from_review(session, review_id)
    if not records:
        raise Invalid("No vote of this review chose a side yet: there is no pair to save.", param="review_id")
    dataset = target_dataset(session, dataset_id, new_name)
    for record in records:
        add_example(session, stored_id(dataset), record, note="preferred in a blind review", limits=limits or Limits())
    session.refresh(dataset)
    return len(records), dataset
