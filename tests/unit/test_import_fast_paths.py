"""The importer's fast paths give exactly what their plain definitions give, on the inputs that leave them."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.datasets.import_rows import parse_line
from app.datasets.validation.checks import content_hash, search_text


def canonical_hash(record) -> str:
    """content_hash's definition: messages with keys role, content, then sorted; other objects sorted; tools."""
    messages = []
    for m in record["messages"]:
        keys = [k for k in ("role", "content") if k in m] + sorted(k for k in m if k not in ("role", "content"))
        messages.append({k: json.loads(json.dumps(m[k], sort_keys=True)) for k in keys})
    text = json.dumps(messages) + "\n" + json.dumps(record.get("tools"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize(
    "content",
    [
        "plain ASCII",
        "café",
        "日本語",
        "emoji \U0001f600",
        "a literal \\u0041 in the text",
        "tab\tand\nnewline",
        "control \x01 and DEL \x7f",
        'quote " and backslash \\',
        "line separator \u2028",
        "half \ud83d",
    ],
)
@pytest.mark.parametrize("shape", ["plain", "weighted", "keys reordered", "tool call", "content parts"])
def test_content_hash_matches_its_definition_for_any_text_and_shape(content, shape):
    messages = {
        "plain": [{"role": "user", "content": content}, {"role": "assistant", "content": "ok"}],
        "weighted": [{"role": "user", "content": content}, {"role": "assistant", "content": "ok", "weight": 0}],
        "keys reordered": [{"content": content, "role": "user"}, {"weight": 1, "role": "assistant", "content": ""}],
        "tool call": [
            {"role": "user", "content": content},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
        ],
        "content parts": [{"role": "user", "content": [{"type": "text", "text": content}]}],
    }[shape]
    record = {"messages": messages, "tools": [{"type": "function", "function": {"name": "f", "description": content}}]}
    stored = json.dumps(messages)
    assert content_hash(record) == content_hash(record, stored) == canonical_hash(record)


def test_content_hash_ignores_key_order_but_not_content():
    first = {
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    same = {"messages": [{"content": "Hi", "role": "user"}], "tools": [{"function": {"name": "f"}, "type": "function"}]}
    assert content_hash(first) == content_hash(same)
    assert content_hash(first) != content_hash({"messages": [{"role": "user", "content": "Hi!"}]})
    assert content_hash(first) != content_hash({"messages": first["messages"]})


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Hello World"}, {"role": "assistant", "content": "HI"}],
        [{"role": "user", "content": [{"type": "text", "text": "Part ONE"}, {"type": "image_url"}]}],
        [{"role": "assistant", "content": None, "tool_calls": []}, {"role": "tool", "content": "Result"}],
        [{"role": "user"}, {"role": "assistant", "content": "Only Me"}],
        ["not a message", {"role": "user", "content": "Kept"}],
        [],
    ],
)
def test_search_text_is_the_lower_cased_text_of_every_message(messages):
    texts = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    assert search_text(messages) == "\n".join(texts).lower()


@pytest.mark.parametrize(
    "text",
    [
        '{"messages": []}',
        '  {"messages": []}',
        '{"messages": []}  ',
        '{"messages": []}\t',
        '{"messages": []} x',
        '{"messages": []}{"messages": []}',
        '\ufeff{"messages": []}',
        '{"messages": [}',
        "[1, 2]",
        '"text"',
        '{"messages": [1.5e300, -2.5, 1e-400]}',
    ],
)
def test_parse_line_agrees_with_json_loads(text):
    record, code, detail = parse_line(text)
    try:
        expected = json.loads(text)
    except ValueError as exc:
        assert (record, code) == (None, "invalid_json") and detail.startswith(exc.msg)
        return
    if isinstance(expected, dict):
        assert (record, code) == (expected, None)
    else:
        assert (record, code) == (None, "not_an_object")


@pytest.mark.parametrize(
    "text",
    [
        "NaN",
        '{"messages": [1e400]}',
        '{"messages": [{"role": "user", "content": "x", "weight": -1E+400}]}',
        '{"messages": [], "score": Infinity}',
        '{"messages": [], "score": -Infinity}',
        '  {"messages": [NaN]}',
    ],
)
def test_parse_line_refuses_numbers_json_cannot_carry(text):
    # json.loads reads these as NaN or infinity, which an export would write as `Infinity`: not JSON.
    record, code, detail = parse_line(text)
    assert (record, code) == (None, "non_finite_number")
    assert detail.startswith("found ")
