"""A run's data source in OpenAI's `completions` shape: checked and completed at creation, read by the executor.

```
{"type": "completions", "model": "...",
 "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]}
                 | {"type": "item_reference", "item_reference": "item.messages"},
 "source": {"type": "file_content", "content": [{"item": {...}}]} | {"type": "file_id", "id": "file-..."}
         | {"type": "dataset", "dataset_id": N, "split": "validation"},          (Tuneboard's own)
 "sampling_params": {"temperature", "max_completion_tokens", "top_p", "seed"}}
```
"""

from __future__ import annotations

import math
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.engine.chat_types import ChatParams
from app.errors import Invalid
from app.evals.items import (
    check_split,
    content_text,
    items_from_content,
    items_from_dataset,
    items_from_file_id,
)
from app.evals.templating import check_messages, parse_reference, render_messages, resolve_reference
from app.tables import Eval

DEFAULT_REFERENCE = "item.messages"
# Evals compare models: greedy decoding by default, so a run says the same thing each time it is run.
# seed 42 is OpenAI's documented default; an output item's sample always reports the seed it ran with.
DEFAULT_SAMPLING: dict[str, Any] = {"temperature": 0.0, "max_completion_tokens": 256, "top_p": 1.0, "seed": 42}
MAX_COMPLETION_TOKENS = 32_768
_MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
P = "data_source"


def _number(value: Any, low: float, high: float, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{param.rsplit('.', 1)[-1]} must be a number.", param=param)
    if not low <= value <= high:
        raise Invalid(f"{param.rsplit('.', 1)[-1]} must be between {low:g} and {high:g}.", param=param)
    return float(value)


def _whole(value: Any, low: int, high: int, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{param.rsplit('.', 1)[-1]} must be a whole number from {low} to {high}.", param=param)
    return int(value)


def check_sampling(params: Any) -> dict[str, Any]:
    """The sampling parameters with the defaults filled in (temperature 0: greedy)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise Invalid("sampling_params must be an object.", param=f"{P}.sampling_params")
    where = f"{P}.sampling_params"
    out = dict(DEFAULT_SAMPLING)
    for key, value in params.items():
        if value is None:
            continue
        if key == "temperature":
            out[key] = _number(value, 0, 2, f"{where}.{key}")
        elif key == "top_p":
            out[key] = _number(value, 0, 1, f"{where}.{key}")
        elif key in ("max_completion_tokens", "max_tokens"):
            out["max_completion_tokens"] = _whole(value, 1, MAX_COMPLETION_TOKENS, f"{where}.{key}")
        elif key == "seed":
            out[key] = _whole(value, -(2**63), 2**63 - 1, f"{where}.{key}")
        elif key == "tools" and isinstance(value, list) and all(isinstance(tool, dict) for tool in value):
            out[key] = value  # the functions offered; the engine checks their schemas when it answers
        elif key == "response_format" and isinstance(value, dict):
            out[key] = value
        elif key in ("tools", "response_format"):
            raise Invalid(
                f"{key} must be {'a list of tools' if key == 'tools' else 'an object'}.", param=f"{where}.{key}"
            )
        else:
            raise Invalid(f"Unknown sampling parameter {key!r}.", param=f"{where}.{key}")
    return out


def chat_params(data_source: dict[str, Any]) -> ChatParams:
    """The ChatParams a stored data source asks for."""
    sampling = {**DEFAULT_SAMPLING, **(data_source.get("sampling_params") or {})}
    return ChatParams(
        temperature=float(sampling["temperature"]),
        top_p=float(sampling["top_p"]),
        max_tokens=int(sampling["max_completion_tokens"]),
        seed=sampling.get("seed"),
        tools=sampling.get("tools") or None,
        response_format=sampling.get("response_format"),
    )


def _check_input_messages(spec: Any) -> dict[str, Any]:
    where = f"{P}.input_messages"
    if spec is None:
        return {"type": "item_reference", "item_reference": DEFAULT_REFERENCE}
    if not isinstance(spec, dict):
        raise Invalid("input_messages must be an object.", param=where)
    kind = spec.get("type")
    if kind == "template":
        check_messages(spec.get("template"), f"{where}.template")
        return {"type": "template", "template": spec["template"]}
    if kind == "item_reference":
        reference = spec.get("item_reference")
        namespace, _ = parse_reference(reference, f"{where}.item_reference")
        if namespace != "item":
            raise Invalid("An item reference names a field of the item (item.…).", param=f"{where}.item_reference")
        return {"type": "item_reference", "item_reference": reference}
    raise Invalid("input_messages type is 'template' or 'item_reference'.", param=f"{where}.type")


def _source_items(
    session: Session, settings: Settings, row: Eval, source: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stored source and its items (the eval's dataset and split when no source is given)."""
    where = f"{P}.source"
    if source is None:
        if row.dataset_id is None:
            raise Invalid("This eval has no dataset: give the run a source of items.", param=where)
        source = {"type": "dataset", "dataset_id": row.dataset_id, "split": row.split or "all"}
    if not isinstance(source, dict):
        raise Invalid("source must be an object.", param=where)
    kind = source.get("type")
    if kind == "file_content":
        return {"type": "file_content", "content": source.get("content")}, items_from_content(
            source.get("content"), f"{where}.content"
        )
    if kind == "file_id":
        file_id = source.get("id")
        if not isinstance(file_id, str) or not file_id:
            raise Invalid("A file_id source needs the file's id.", param=f"{where}.id")
        return {"type": "file_id", "id": file_id}, items_from_file_id(session, settings, file_id)
    if kind == "dataset":
        dataset_id = source.get("dataset_id")
        if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
            raise Invalid("A dataset source needs the dataset's id.", param=f"{where}.dataset_id")
        try:
            split = check_split(source.get("split") or "all")
        except Invalid as exc:
            raise Invalid(exc.message, param=f"{where}.split") from None
        return {"type": "dataset", "dataset_id": dataset_id, "split": split}, items_from_dataset(
            session, dataset_id, split
        )
    raise Invalid("source type is 'file_content', 'file_id' or 'dataset'.", param=f"{where}.type")


def prepare_data_source(
    session: Session, settings: Settings, row: Eval, model: str, data_source: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The data source to store (defaults filled in) and the items to freeze."""
    if data_source is None:
        data_source = {"type": "completions"}
    if not isinstance(data_source, dict):
        raise Invalid("data_source must be an object.", param=P)
    if data_source.get("type", "completions") != "completions":
        raise Invalid(
            "Tuneboard runs data sources of type 'completions' (the model answers each item).", param=f"{P}.type"
        )
    input_messages = _check_input_messages(data_source.get("input_messages"))
    source, items = _source_items(session, settings, row, data_source.get("source"))
    if not items:
        raise Invalid("The source has no items to evaluate.", param=f"{P}.source")
    if not any(input_messages_for(input_messages, item) for item in items[:1000]):
        raise Invalid(
            "No item gives the model any message: check input_messages against the items.",
            param=f"{P}.input_messages",
        )
    stored = {
        "type": "completions",
        "model": model,
        "input_messages": input_messages,
        "source": source,
        "sampling_params": check_sampling(data_source.get("sampling_params")),
    }
    return stored, items


def _clean_message(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        return None
    out = {k: message[k] for k in _MESSAGE_KEYS if k in message}
    content = message.get("content")
    out["content"] = content if isinstance(content, str) else content_text(content)
    return out


def input_messages_for(input_messages: dict[str, Any], item: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages sent to the model for an item ([] when the item gives none; Invalid for a bad template)."""
    if input_messages.get("type") == "template":
        return render_messages(input_messages["template"], item)
    value = resolve_reference(input_messages.get("item_reference", DEFAULT_REFERENCE), item)
    if isinstance(value, str) and value:
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return []
    messages = [m for m in (_clean_message(v) for v in value) if m is not None]
    return messages if len(messages) == len(value) else []
