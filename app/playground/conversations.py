"""Playground conversations kept in the database, so a reload (URL ?c=<id>) does not lose them."""

from __future__ import annotations

import json
import math
from typing import Any

from sqlmodel import Session

from app.errors import Invalid, NotFound
from app.playground.chat_tools import TOOL_CHOICES, check_tools
from app.playground.tool_messages import check_tool_calls
from app.tables import Conversation
from app.tables.common import utcnow

MAX_COLUMNS = 3
MAX_MESSAGES = 500
ROLES = ("user", "assistant", "tool")
PARAM_LIMITS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "max_tokens": (1, 4096)}
DEFAULT_PARAMS: dict[str, Any] = {
    "system": "",
    "temperature": 0.7,
    "top_p": 1.0,
    "max_tokens": 256,
    "tools": [],
    "tool_choice": "auto",
}
# What the model reads for a tool result the person marked as an error.
ERROR_PREFIX = "Error: "


def get_conversation(session: Session, conversation_id: str) -> Conversation:
    """A stored conversation, or NotFound."""
    conv = session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound(f"No conversation {conversation_id!r}; it may have been deleted.", param="c")
    return conv


def clean_params(raw: Any) -> dict[str, Any]:
    """System message and sampling parameters, checked against their ranges."""
    raw = raw if isinstance(raw, dict) else {}
    system = raw.get("system")
    out: dict[str, Any] = {"system": system[:20000] if isinstance(system, str) else ""}
    for key, (low, high) in PARAM_LIMITS.items():
        value = raw.get(key, DEFAULT_PARAMS[key])
        if value in (None, ""):
            value = DEFAULT_PARAMS[key]
        out[key] = _number(key, value, low, high)
    out["tools"] = clean_tools(raw.get("tools"))
    choice = raw.get("tool_choice") or "auto"
    if choice not in TOOL_CHOICES:
        raise Invalid(f"tool_choice is one of {', '.join(TOOL_CHOICES)}.", param="tool_choice")
    out["tool_choice"] = choice
    return out


def clean_tools(raw: Any) -> list[dict[str, Any]]:
    """The tools editor's JSON (text or parsed): a list of function tools, or of bare function definitions
    `{"name", "description"?, "parameters"?}`, checked as /v1 checks `tools`; [] for none."""
    if isinstance(raw, str):
        if not raw.strip():
            return []
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise Invalid(f"The tools are not valid JSON: {str(exc)[:200]}.", param="tools") from None
    if raw in (None, []):
        return []
    if isinstance(raw, dict):
        raw = [raw]  # one definition on its own
    if isinstance(raw, list):
        raw = [{"type": "function", "function": t} if isinstance(t, dict) and "type" not in t else t for t in raw]
    return check_tools(raw) or []


_JSON_NAMES = {list: "array", dict: "object"}


def _number(key: str, value: Any, low: float, high: float) -> int | float:
    # JSON may carry Infinity, NaN, 1e400 (infinite) and 400-digit integers; int() of the first overflows and NaN
    # fails every comparison, so the range check is written to refuse them all. Lists and objects are not echoed.
    number: float | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        except ValueError:
            number = None
    if number is None:
        shown = (
            repr(value)[:80]
            if isinstance(value, str | bool)
            else "a JSON array"
            if isinstance(value, list)
            else "a JSON object"
        )
        raise Invalid(f"{key} must be a number; got {shown}.", param=key)
    if not low <= number <= high:
        raise Invalid(f"{key} must be between {low} and {high}; got {str(value)[:80]}.", param=key)
    return int(number) if key == "max_tokens" else number


def clean_messages(raw: Any, n_columns: int = MAX_COLUMNS) -> list[dict[str, Any]]:
    """Turns as stored: user messages; assistant replies (with their tool calls) and tool results (an `error` flag
    when the person marked one failed), both tagged with the column (model) they belong to."""
    if not isinstance(raw, list):
        raise Invalid("messages must be a list.", param="messages")
    if len(raw) > MAX_MESSAGES:
        raise Invalid(f"A conversation holds at most {MAX_MESSAGES} messages.", param="messages")
    out = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise Invalid(f"Message {i + 1} needs a role (user, assistant or tool) and text content.", param="messages")
        item: dict[str, Any] = {"role": m["role"], "content": m["content"]}
        if m["role"] != "user":
            column = m.get("column", 0)
            if not isinstance(column, int) or not 0 <= column < n_columns:
                raise Invalid(f"Message {i + 1} belongs to an unknown column.", param="messages")
            item["column"] = column
        if m["role"] == "assistant":
            if m.get("cut") is True:  # the reply stopped at max tokens: the page says so after a reload too
                item["cut"] = True
            if m.get("tool_calls"):
                item["tool_calls"] = check_tool_calls(m["tool_calls"], f"messages[{i}].tool_calls")
        if m["role"] == "tool":
            if not isinstance(m.get("tool_call_id"), str):
                raise Invalid(f"Message {i + 1} is a tool result without the call it answers.", param="messages")
            item["tool_call_id"] = m["tool_call_id"]
            if m.get("error") is True:
                item["error"] = True
        out.append(item)
    return out


def clean_models(raw: Any) -> list[str]:
    """One to three model ids."""
    models = [m.strip() for m in raw if isinstance(m, str) and m.strip()] if isinstance(raw, list) else []
    if not 1 <= len(models) <= MAX_COLUMNS:
        raise Invalid(f"Pick between 1 and {MAX_COLUMNS} models.", param="models")
    return models


def save_conversation(session: Session, conversation_id: str | None, data: Any) -> Conversation:
    """Create or replace a conversation from the playground's state (models, params, messages)."""
    if not isinstance(data, dict):
        raise Invalid("Send the conversation as a JSON object.")
    models = clean_models(data.get("models"))
    params = clean_params(data.get("params"))
    messages = clean_messages(data.get("messages"), len(models))
    conv = get_conversation(session, conversation_id) if conversation_id else Conversation()
    first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
    conv.title = " ".join(first_user.split())[:120] or "New conversation"
    conv.models, conv.params, conv.messages = models, params, messages
    conv.updated_at = utcnow()
    session.add(conv)
    session.commit()
    session.refresh(conv)
    return conv


def column_history(messages: list[dict[str, Any]], column: int, system: str = "") -> list[dict[str, Any]]:
    """The chat messages one model sees: the system message, every user turn, its own replies (with their tool
    calls) and the results of its calls (a failed one reads "Error: …")."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system.strip() else []
    for m in messages:
        if m["role"] != "user" and m.get("column", 0) != column:
            continue
        item: dict[str, Any] = {"role": m["role"], "content": m["content"]}
        if m.get("tool_calls"):
            item["tool_calls"] = [dict(call, function=dict(call["function"])) for call in m["tool_calls"]]
        if m["role"] == "tool":
            item["tool_call_id"] = m["tool_call_id"]
            if m.get("error"):
                item["content"] = ERROR_PREFIX + m["content"]
        out.append(item)
    return out


def as_json(conv: Conversation | None) -> dict[str, Any] | None:
    """The conversation as the playground script reads it."""
    if conv is None:
        return None
    return {"id": conv.id, "models": conv.models, "params": conv.params, "messages": conv.messages}
