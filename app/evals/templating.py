"""OpenAI's eval templates: `{{item.x}}` / `{{sample.output_text}}` substitution, item references, and samples.

A template names a value by a path in one of two namespaces: `item` (the eval item, a dict) and `sample` (what the
model answered: see `make_sample`). Paths are dotted keys; a list is indexed by a number (`item.choices.0`). The
substitution is one pass of plain lookups: no expression is evaluated and a substituted value is never rendered
again, so an item's text cannot inject a template of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from app.errors import Invalid

NAMESPACES = ("item", "sample")
MESSAGE_ROLES = ("system", "developer", "user", "assistant")
TEXT_PART_TYPES = ("input_text", "output_text")
# Media parts are part of OpenAI's message shape, but Tuneboard's models read text only.
MEDIA_PART_TYPES = ("input_image", "input_audio")

_PATH = r"(item|sample)((?:\.[^\s.{}]+)*)"
_PLACEHOLDER = re.compile(r"\{\{\s*" + _PATH + r"\s*\}\}")
_REFERENCE = re.compile(_PATH)
_FENCE = re.compile(r"```[\w+.-]*[ \t]*\n(.*?)\n?[ \t]*```", re.DOTALL)
_MESSAGE_KEYS = frozenset({"role", "content", "type"})
_PART_KEYS = frozenset({"type", "text", "prompt_cache_breakpoint"})


def lookup(root: Any, path: list[str]) -> Any:
    """The value at `path` under `root` (dict keys, list indexes), or None where the path leads nowhere."""
    value = root
    for key in path:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def render_value(value: Any) -> str:
    """How a looked-up value reads in text: strings as they are, None as nothing, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def render(template: str, item: Mapping[str, Any], sample: Mapping[str, Any] | None = None) -> str:
    """The template with each `{{item.…}}` / `{{sample.…}}` replaced by its value ("" for a missing path)."""
    namespaces = {"item": item, "sample": sample or {}}

    def substitute(match: re.Match[str]) -> str:
        path = [key for key in match.group(2).split(".") if key]
        return render_value(lookup(namespaces[match.group(1)], path))

    return _PLACEHOLDER.sub(substitute, template)


def render_content(content: Any, item: Mapping[str, Any], sample: Mapping[str, Any] | None = None) -> str:
    """A message's content (a string, one text part, or a list of them) rendered to plain text."""
    if isinstance(content, str):
        return render(content, item, sample)
    parts = content if isinstance(content, list) else [content]
    texts = []
    for part in parts:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind not in TEXT_PART_TYPES:
            raise Invalid(f"Only text content can be sent to a model here, not {kind or 'this part'}.")
        texts.append(render(str(part.get("text", "")), item, sample))
    return "\n".join(texts)


def render_messages(
    template_messages: list[Mapping[str, Any]], item: Mapping[str, Any], sample: Mapping[str, Any] | None = None
) -> list[dict[str, str]]:
    """Chat messages `{role, content}` with every template in their content rendered."""
    return [
        {"role": str(message["role"]), "content": render_content(message.get("content", ""), item, sample)}
        for message in template_messages
    ]


def check_messages(messages: Any, param: str) -> None:
    """Raise Invalid (naming the field) unless `messages` is a non-empty list of OpenAI eval messages with text."""
    if not isinstance(messages, list) or not messages:
        raise Invalid("Give a non-empty list of messages, each with a role and a content.", param=param)
    for index, message in enumerate(messages):
        where = f"{param}[{index}]"
        if not isinstance(message, dict):
            raise Invalid("Each message is an object with a role and a content.", param=where)
        unknown = sorted(set(message) - _MESSAGE_KEYS)
        if unknown:
            raise Invalid(f"Unknown field {unknown[0]!r} in a message: it takes role, content and type.", param=where)
        if message.get("type", "message") != "message":
            raise Invalid("A message's type, when given, is 'message'.", param=f"{where}.type")
        if message.get("role") not in MESSAGE_ROLES:
            raise Invalid(f"The role is one of {', '.join(MESSAGE_ROLES)}.", param=f"{where}.role")
        _check_content(message.get("content"), f"{where}.content")


def _check_content(content: Any, param: str) -> None:
    """Raise Invalid unless `content` is a string, a text part, or a list of text parts."""
    if isinstance(content, str):
        return
    if isinstance(content, dict):
        _check_part(content, param)
        return
    if not isinstance(content, list):
        raise Invalid("The content is a string or a list of input_text / output_text parts.", param=param)
    for index, part in enumerate(content):
        _check_part(part, f"{param}[{index}]")


def _check_part(part: Any, param: str) -> None:
    """Raise Invalid unless `part` is an input_text or output_text part."""
    if not isinstance(part, dict):
        raise Invalid("A content part is an object with a type and a text.", param=param)
    kind = part.get("type")
    if kind in MEDIA_PART_TYPES:
        raise Invalid(f"{kind} parts aren't supported: Tuneboard's models read text only.", param=f"{param}.type")
    if kind not in TEXT_PART_TYPES:
        raise Invalid("A content part's type is input_text or output_text.", param=f"{param}.type")
    if not isinstance(part.get("text"), str):
        raise Invalid("A text part needs its text, a string.", param=f"{param}.text")
    unknown = sorted(set(part) - _PART_KEYS)
    if unknown:
        raise Invalid(f"Unknown field {unknown[0]!r} in a text part.", param=param)


def parse_reference(reference: Any, param: str | None = None) -> tuple[str, list[str]]:
    """The namespace and path of a reference like `item.messages` (braces allowed); Invalid otherwise."""
    text = reference.strip() if isinstance(reference, str) else ""
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    match = _REFERENCE.fullmatch(text)
    if match is None:
        raise Invalid("A reference names a field of the item, like item.messages.", param=param)
    return match.group(1), [key for key in match.group(2).split(".") if key]


def resolve_reference(reference: str, item: Mapping[str, Any], sample: Mapping[str, Any] | None = None) -> Any:
    """The raw value a reference like `item.messages` points at (None where the path leads nowhere)."""
    namespace, path = parse_reference(reference)
    return lookup(item if namespace == "item" else (sample or {}), path)


def strip_code_fence(text: str) -> str:
    """The text inside a Markdown code fence (```json … ```) when the whole text is one; else the text."""
    match = _FENCE.fullmatch(text.strip())
    return match.group(1) if match else text


def parse_json_output(text: str) -> dict[str, Any] | list[Any] | None:
    """The output parsed as a JSON object or array (a code fence around it is fine), or None."""
    try:
        value = json.loads(strip_code_fence(text))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def make_sample(
    output_text: str, tool_calls: list[dict[str, Any]] | None = None, *, finish_reason: str | None = None
) -> dict[str, Any]:
    """The `sample` namespace for one answer, shaped like OpenAI's: output_text, output_json, output_tools, choices."""
    tools = list(tool_calls or [])
    message: dict[str, Any] = {"role": "assistant", "content": output_text}
    if tools:
        message["tool_calls"] = tools
    return {
        "output_text": output_text,
        "output_json": parse_json_output(output_text),
        "output_tools": tools,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
    }
