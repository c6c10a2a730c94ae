"""Tool calls and tool results inside chat messages, checked as OpenAI checks them (its wording and `param`s)."""

from __future__ import annotations

from typing import Any

from app.errors import Invalid
from app.playground.chat_tools import missing, supported, type_error

MAX_CALLS = 128


def check_tool_calls(calls: Any, param: str) -> list[dict[str, Any]]:
    """An assistant message's tool_calls: [{"id", "type": "function", "function": {"name", "arguments": str}}]."""
    if not isinstance(calls, list):
        raise type_error(param, "an array", calls)
    if len(calls) > MAX_CALLS:
        raise Invalid(f"Invalid '{param}': at most {MAX_CALLS} calls.", code="array_above_max_length", param=param)
    out = []
    for index, call in enumerate(calls):
        where = f"{param}[{index}]"
        if not isinstance(call, dict):
            raise type_error(where, "an object", call)
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise (
                missing(f"{where}.id") if call.get("id") is None else type_error(f"{where}.id", "a string", call["id"])
            )
        if call.get("type", "function") != "function":
            raise supported(f"{where}.type", call.get("type"), ("function",))
        function = call.get("function")
        if not isinstance(function, dict):
            raise (
                missing(f"{where}.function")
                if function is None
                else type_error(f"{where}.function", "an object", function)
            )
        if not isinstance(function.get("name"), str):
            raise missing(f"{where}.function.name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            raise (
                missing(f"{where}.function.arguments")
                if arguments is None
                else type_error(f"{where}.function.arguments", "a string", arguments)
            )
        out.append(
            {"id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": arguments}}
        )
    return out


def check_tool_turns(messages: list[dict[str, Any]], param: str = "messages") -> None:
    """Each tool message answers a call of the assistant message before it, and each such call is answered."""
    open_calls: dict[str, str] = {}  # id → name of the latest assistant message's calls still unanswered
    caller: int | None = None
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            call_id = message.get("tool_call_id")
            if caller is None or call_id not in open_calls:
                raise Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceding message with "
                    "'tool_calls'.",
                    param=f"{param}[{index}].role" if caller is None else f"{param}[{index}].tool_call_id",
                )
            message.setdefault("name", open_calls.pop(call_id))
            continue
        if open_calls and caller is not None:
            _unanswered(caller, open_calls, param)
        open_calls, caller = {}, None
        if role == "assistant" and message.get("tool_calls"):
            open_calls = {call["id"]: call["function"]["name"] for call in message["tool_calls"]}
            caller = index
    if open_calls and caller is not None:
        _unanswered(caller, open_calls, param)


def _unanswered(index: int, open_calls: dict[str, str], param: str) -> None:
    raise Invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
        "'tool_call_id'. The following tool_call_ids did not have response messages: " + ", ".join(open_calls),
        param=f"{param}[{index}].role",
    )


def mentions_json(messages: list[dict[str, Any]]) -> bool:
    """Whether any message's text says "json" (any case), as OpenAI asks of a json_object request."""
    return any("json" in str(message.get("content") or "").lower() for message in messages)
