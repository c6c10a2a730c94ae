"""OpenAI's eval templates: substitution, messages, item references and samples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import Invalid
from app.evals.templating import (
    check_messages,
    make_sample,
    parse_json_output,
    render,
    render_content,
    render_messages,
    resolve_reference,
    strip_code_fence,
)

ITEM = {
    "question": "What is the capital of France?",
    "answer": "Paris",
    "meta": {"source": {"name": "atlas"}, "year": 2024, "tags": ["geo", "eu"], "ok": True, "none": None},
    "messages": [{"role": "user", "content": "Hi"}],
}


def test_item_fields_are_substituted_with_or_without_spaces():
    assert render("Q: {{item.question}} A: {{ item.answer }}", ITEM) == "Q: What is the capital of France? A: Paris"


def test_nested_paths_and_list_indexes():
    assert render("{{item.meta.source.name}}/{{ item.meta.tags.1 }}", ITEM) == "atlas/eu"


def test_non_string_values_render_as_json():
    assert render("{{item.meta.year}} {{item.meta.ok}} {{item.meta.tags}}", ITEM) == '2024 true ["geo", "eu"]'
    assert render("{{item.meta.source}}", ITEM) == '{"name": "atlas"}'


def test_missing_paths_and_nulls_render_as_nothing():
    assert render("[{{item.nope}}|{{item.meta.tags.7}}|{{item.answer.x}}|{{item.meta.none}}]", ITEM) == "[|||]"
    assert render("[{{sample.output_text}}]", ITEM, None) == "[]"


def test_the_sample_namespace():
    sample = make_sample('{"city": "Paris", "n": 2}', tool_calls=[{"id": "c1", "type": "function"}])
    assert render("{{sample.output_text}}", ITEM, sample) == '{"city": "Paris", "n": 2}'
    assert render("{{sample.output_json.city}} {{sample.output_json.n}}", ITEM, sample) == "Paris 2"
    assert render("{{sample.output_tools}}", ITEM, sample) == '[{"id": "c1", "type": "function"}]'


def test_a_substituted_value_is_never_rendered_again():
    item = {"text": "{{item.secret}}", "secret": "leaked"}
    assert render("{{item.text}}", item) == "{{item.secret}}"


def test_other_braces_are_left_alone_and_a_bare_namespace_is_the_whole_of_it():
    text = "{{ foo.bar }} {{item}}x {not a template} {{ item. }}"
    assert render(text, {"a": 1}) == '{{ foo.bar }} {"a": 1}x {not a template} {{ item. }}'


@given(st.text().filter(lambda text: "{{" not in text))
def test_text_without_templates_is_unchanged(text):
    assert render(text, ITEM, make_sample("x")) == text


def test_messages_render_string_and_part_contents():
    template = [
        {"role": "system", "content": "Grade the answer to {{item.question}}"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Reference: {{item.answer}}"},
                {"type": "output_text", "text": "Answer: {{sample.output_text}}"},
            ],
        },
        {"role": "user", "content": {"type": "input_text", "text": "One part: {{item.answer}}"}},
    ]
    assert render_messages(template, ITEM, make_sample("Lyon")) == [
        {"role": "system", "content": "Grade the answer to What is the capital of France?"},
        {"role": "user", "content": "Reference: Paris\nAnswer: Lyon"},
        {"role": "user", "content": "One part: Paris"},
    ]


def test_media_content_cannot_be_rendered_to_text():
    with pytest.raises(Invalid, match="Only text"):
        render_content([{"type": "input_image", "image_url": "https://example.com/a.png"}], ITEM)


@pytest.mark.parametrize(
    ("messages", "param", "words"),
    [
        ([], "input", "non-empty list"),
        ("hello", "input", "non-empty list"),
        (["hello"], "input[0]", "object"),
        ([{"role": "robot", "content": "x"}], "input[0].role", "user"),
        ([{"role": "user"}], "input[0].content", "string or a list"),
        ([{"role": "user", "content": "x", "name": "bob"}], "input[0]", "Unknown field 'name'"),
        ([{"role": "user", "content": "x", "type": "note"}], "input[0].type", "'message'"),
        ([{"role": "user", "content": [{"type": "input_text"}]}], "input[0].content[0].text", "text"),
        ([{"role": "user", "content": [{"type": "banana", "text": "x"}]}], "input[0].content[0].type", "input_text"),
        (
            [{"role": "user", "content": {"type": "input_image", "image_url": "https://x/y.png"}}],
            "input[0].content.type",
            "text only",
        ),
    ],
)
def test_message_templates_are_checked_with_the_field_named(messages, param, words):
    with pytest.raises(Invalid, match=words) as caught:
        check_messages(messages, "input")
    assert caught.value.param == param


def test_openai_shaped_messages_pass_the_check():
    check_messages(
        [
            {"type": "message", "role": "developer", "content": {"type": "input_text", "text": "{{item.x}}"}},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"role": "user", "content": "{{sample.output_text}}"},
        ],
        "input",
    )


def test_item_references_give_the_raw_value():
    assert resolve_reference("item.messages", ITEM) == [{"role": "user", "content": "Hi"}]
    assert resolve_reference("{{ item.meta.tags }}", ITEM) == ["geo", "eu"]
    assert resolve_reference("item.meta.year", ITEM) == 2024
    assert resolve_reference("item.nothing.here", ITEM) is None
    assert resolve_reference("sample.output_text", ITEM, make_sample("hi")) == "hi"


@pytest.mark.parametrize("reference", ["messages", "items.messages", "", "item messages", "{{ foo.bar }}"])
def test_a_reference_outside_the_namespaces_is_refused(reference):
    with pytest.raises(Invalid, match=r"like item\.messages"):
        resolve_reference(reference, ITEM)


def test_code_fences_are_stripped_only_when_they_wrap_the_whole_text():
    assert strip_code_fence('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert strip_code_fence("  ```\n[1, 2]\n```\n") == "[1, 2]"
    assert strip_code_fence('Here: ```json\n{"a": 1}\n```') == 'Here: ```json\n{"a": 1}\n```'


def test_samples_parse_json_output_when_there_is_some():
    assert parse_json_output('```json\n{"a": [1, 2]}\n```') == {"a": [1, 2]}
    assert parse_json_output("[1, 2]") == [1, 2]
    assert parse_json_output("Paris") is None
    assert parse_json_output("42") is None
    assert parse_json_output("[" * 100_000) is None


def test_a_sample_is_shaped_like_openais():
    sample = make_sample("Paris", finish_reason="stop")
    assert sample == {
        "output_text": "Paris",
        "output_json": None,
        "output_tools": [],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}],
    }
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    with_tools = make_sample("", tool_calls=calls)
    assert with_tools["output_tools"] == calls
    assert with_tools["choices"][0]["message"]["tool_calls"] == calls
