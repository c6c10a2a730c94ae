"""Tool definitions, tool calls and tool results in a chat: rendered for the model, and parsed back from its text.

Models whose chat template takes `tools=` (Qwen2.5/3, Llama 3.1+, Mistral...) render through it. The others
(SmolLM2, the tiny test model) get the fallback format, Hermes style, which is also Qwen's own, so one parser
serves both:

- the tool definitions go in the system turn: FALLBACK_INSTRUCTIONS, then `<tools>`, one JSON definition per
  line, `</tools>`, then the system message (if any) after a blank line;
- an assistant turn renders its content (if any), a newline, then one
  `<tool_call>{"name": "lookup_order", "arguments": {"order_id": "123"}}</tool_call>` per call, joined by
  CALL_SEPARATOR (several tags for parallel calls);
- `tool` messages render as a user turn of `<tool_response>{"name": ..., "content": ...}</tool_response>`
  tags, consecutive ones sharing the turn.

parse_tool_calls reads Hermes tags, Mistral's `[TOOL_CALLS][...]` and, given the function names, Llama 3.1's bare
`{"name": ..., "parameters": ...}` answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Collection
from typing import Any

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
CALL_SEPARATOR = "\n"
RESPONSE_OPEN = "<tool_response>"
RESPONSE_CLOSE = "</tool_response>"
TOOLS_OPEN = "<tools>"
TOOLS_CLOSE = "</tools>"
FALLBACK_INSTRUCTIONS = (
    "You can call these tools. To call one, answer with "
    '<tool_call>{"name": <function name>, "arguments": <arguments as a JSON object>}</tool_call> '
    "(one tag per call; several tags for parallel calls)."
)
MISTRAL_CALLS = "[TOOL_CALLS]"

_PROBE_NAME = "tuneboard_probe_function_7f3a"
_PROBE_TOOL = {
    "type": "function",
    "function": {"name": _PROBE_NAME, "description": "probe", "parameters": {"type": "object", "properties": {}}},
}
_CALL_RE = re.compile(re.escape(CALL_OPEN) + r"(.*?)" + re.escape(CALL_CLOSE), re.DOTALL)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def new_call_id() -> str:
    """A fresh OpenAI-style tool call id: "call_" and 24 hex digits."""
    return "call_" + secrets.token_hex(12)


def content_text(message: dict) -> str:
    """The text of a message's content: a string, or the text parts of an OpenAI content-part list."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content if isinstance(content, str) else ""


def record_tools(record: Any) -> list[dict] | None:
    """An example's tool definitions (OpenAI's top-level `tools`), or None when it has none usable."""
    tools = record.get("tools") if isinstance(record, dict) else None
    if not isinstance(tools, list):
        return None
    return [tool for tool in tools if isinstance(tool, dict)] or None


def has_tools(messages: list[dict], tools: list[dict] | None = None) -> bool:
    """Whether a chat needs the tool rendering: definitions, calls, or tool results."""
    return bool(tools) or any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


def takes_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders `tools=` (probed: a dummy definition must show up)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one, or a "tool_use" one
        template = template.get("tool_use") or template.get("default")
    if not isinstance(template, str) or "tools" not in template:
        return False
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}], tools=[_PROBE_TOOL], tokenize=False, add_generation_prompt=True
        )
    except Exception:  # a template that raises on our probe cannot be trusted with tools
        return False
    return isinstance(text, str) and _PROBE_NAME in text


def _function(call: dict) -> dict:
    function = call.get("function")
    return function if isinstance(function, dict) else call


def call_arguments(call: dict) -> Any:
    """A call's arguments as a JSON value (OpenAI sends a JSON string; datasets sometimes hold the object)."""
    function = _function(call)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return arguments  # kept as the string it is: the model learns what the example says
    return arguments


def call_name(call: dict) -> str:
    """A call's function name."""
    function = _function(call)
    name = function.get("name")
    return name if isinstance(name, str) else ""


def format_call(name: str, arguments: Any) -> str:
    """One call in the fallback format: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`."""
    return f"{CALL_OPEN}{_json({'name': name, 'arguments': arguments})}{CALL_CLOSE}"


def calls_text(calls: Any) -> str:
    """An assistant message's calls as the fallback format renders them: one tag each, CALL_SEPARATOR between."""
    if not isinstance(calls, list):
        return ""
    return CALL_SEPARATOR.join(format_call(call_name(c), call_arguments(c)) for c in calls if isinstance(c, dict))


def assistant_text(message: dict) -> str:
    """An assistant message as the fallback format renders it: its content, then its calls."""
    text = content_text(message)
    tags = calls_text(message.get("tool_calls"))
    if not tags:
        return text
    return f"{text}\n{tags}" if text else tags


def tools_text(tools: list[dict]) -> str:
    """The tool definitions block the fallback format puts in the system turn."""
    lines = "\n".join(_json(tool) for tool in tools)
    return f"{FALLBACK_INSTRUCTIONS}\n{TOOLS_OPEN}\n{lines}\n{TOOLS_CLOSE}"


def call_names(message: dict) -> dict[str, str]:
    """The function name of each call of an assistant message, by call id."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return {}
    return {str(c["id"]): call_name(c) for c in calls if isinstance(c, dict) and c.get("id")}


def response_text(message: dict, names: dict[str, str]) -> str:
    """A `tool` message as the fallback format renders it; `names` maps the chat's call ids to function names."""
    name = message.get("name")
    if not isinstance(name, str) or not name:
        name = names.get(str(message.get("tool_call_id")), "")
    body: dict[str, Any] = {"name": name} if name else {}
    body["content"] = content_text(message)
    return f"{RESPONSE_OPEN}{_json(body)}{RESPONSE_CLOSE}"


def fallback_messages(messages: list[dict], tools: list[dict] | None = None) -> list[dict]:
    """The chat as plain role + text messages in the fallback format, for templates that know no tools."""
    out: list[dict] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, to name the results
    for message in messages:
        role = message.get("role", "user")
        if role == "assistant":
            names.update(call_names(message))
            out.append({"role": "assistant", "content": assistant_text(message)})
        elif role == "tool":
            text = response_text(message, names)
            if out and out[-1].get("tool_results"):
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text, "tool_results": True})
        else:
            out.append({"role": role, "content": content_text(message)})
    out = [{"role": m["role"], "content": m["content"]} for m in out]
    if tools:
        block = tools_text(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{block}\n\n{out[0]['content']}" if out[0]["content"] else block}
        else:
            out.insert(0, {"role": "system", "content": block})
    return out


def native_messages(messages: list[dict]) -> list[dict]:
    """The chat in the shape tool-aware templates expect: text content, calls with arguments as objects."""
    out = []
    for i, message in enumerate(messages):
        clean: dict[str, Any] = {"role": message.get("role", "user"), "content": content_text(message)}
        calls = message.get("tool_calls")
        if isinstance(calls, list) and calls:
            clean["tool_calls"] = [
                {
                    # A call without an id gets one fixed by its place, so every render of the chat agrees (nine
                    # characters: Mistral's template demands that length).
                    "id": call.get("id") or hashlib.sha1(f"{i}.{j}".encode()).hexdigest()[:9],
                    "type": "function",
                    "function": {"name": call_name(call), "arguments": call_arguments(call)},
                }
                for j, call in enumerate(calls)
                if isinstance(call, dict)
            ]
        for key in ("name", "tool_call_id"):
            if isinstance(message.get(key), str):
                clean[key] = message[key]
        out.append(clean)
    return out


def render_chat(
    tokenizer, messages: list[dict], *, tools: list[dict] | None = None, add_generation_prompt: bool
) -> str:
    """The chat with its tools as the model sees it: natively when the template takes tools, else the fallback."""
    if takes_tools(tokenizer):
        return tokenizer.apply_chat_template(
            native_messages(messages), tools=tools or None, tokenize=False, add_generation_prompt=add_generation_prompt
        )
    return tokenizer.apply_chat_template(
        fallback_messages(messages, tools), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def openai_call(name: str, arguments: Any, call_id: str | None = None) -> dict:
    """A call in OpenAI's shape, arguments as a JSON string."""
    text = arguments if isinstance(arguments, str) else _json(arguments)
    return {"id": call_id or new_call_id(), "type": "function", "function": {"name": name, "arguments": text}}


def _as_call(body: Any, names: Collection[str] | None = None) -> dict | None:
    """A parsed JSON object as a call, or None when it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        return None
    if names is not None and body["name"] not in names:
        return None
    key = "arguments" if "arguments" in body else "parameters"
    arguments = body.get(key, {})
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return openai_call(body["name"], arguments)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def parse_tool_calls(text: str, names: Collection[str] | None = None) -> tuple[str, list[dict]]:
    """Split a model's answer into its content and its calls (OpenAI's shape, fresh ids).

    Well-formed `<tool_call>` tags become calls and the text around them (stripped) is the content; a malformed
    or unclosed tag stays in the content as written. A whole answer that is Mistral's `[TOOL_CALLS][...]` is read
    as calls too, and so, given `names` (the offered functions), is Llama 3.1's bare `{"name", "parameters"}`.
    """
    calls: list[dict] = []
    pieces: list[str] = []
    cursor = 0
    for match in _CALL_RE.finditer(text):
        call = _as_call(_loads(match.group(1).strip()))
        if call is None:
            continue
        pieces.append(text[cursor : match.start()])
        calls.append(call)
        cursor = match.end()
    if calls:
        pieces.append(text[cursor:])
        return "".join(pieces).strip(), calls
    stripped = text.strip()
    if stripped.startswith(MISTRAL_CALLS):
        bodies = _loads(stripped[len(MISTRAL_CALLS) :].strip())
        found = [_as_call(b, names) for b in bodies] if isinstance(bodies, list) else []
        if found and all(found):
            return "", [c for c in found if c]
    if names and stripped.startswith("{"):
        call = _as_call(_loads(stripped), names)
        if call is not None:
            return "", [call]
    return text, calls
