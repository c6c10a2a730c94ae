"""Offline token counting: verified rank files, the cookbook's counting rule, and the toy dataset's counts."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.config import Settings
from app.datasets.validation import count_tokens
from app.datasets.validation import tokens as tok
from app.engine import tool_format
from app.engine.testing import build_tiny_model
from app.engine.tokenizer import count_chat_tokens
from app.tables import Example
from tests.conftest import FIXTURES, SHARED

ROOT = Path(__file__).resolve().parents[2]

TOY = FIXTURES / "toy_chat_fine_tuning.jsonl"
if not TOY.exists():
    TOY = SHARED / "datasets" / "toy_chat_fine_tuning.jsonl"


def test_encodings_reproduce_known_token_ids():
    assert tok.get_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
    assert tok.get_encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]


def test_one_encoding_object_is_shared_by_every_thread():
    with ThreadPoolExecutor(4) as pool:
        encodings = list(pool.map(lambda _: tok.get_encoding("o200k_base"), range(8)))
    assert all(e is encodings[0] for e in encodings)


def test_a_rank_file_that_does_not_match_tiktokens_hash_is_refused(monkeypatch):
    monkeypatch.setitem(tok._SPECS, "cl100k_base", tok._SPECS["cl100k_base"] | {"sha256": "0" * 64})
    with pytest.raises(tok.RankFileError, match="sha256"):
        tok.load_ranks("cl100k_base")


def test_an_unknown_encoding_is_refused_with_its_name():
    with pytest.raises(tok.RankFileError, match="p50k"):
        tok.load_ranks("p50k_base")


def test_toy_dataset_counts_match_the_cookbook():
    records = [json.loads(line) for line in TOY.read_text().splitlines()]
    totals = [c.total for c in tok.count_openai(records, "cl100k_base")]
    assert sorted(totals) == [26, 28, 45, 111, 8032]


def test_counting_rule_adds_three_per_message_one_per_name_and_three_priming():
    enc = tok.get_encoding("o200k_base")
    length = lambda s: len(enc.encode_ordinary(s))  # noqa: E731
    record = {
        "messages": [{"role": "user", "content": "Hi there", "name": "ada"}, {"role": "assistant", "content": "Hello!"}]
    }
    expected = (
        3 + length("user") + length("Hi there") + length("ada") + 1 + 3 + length("assistant") + length("Hello!") + 3
    )
    counts = count_tokens(record)
    assert counts.total == expected
    assert counts.assistant == counts.trained == length("Hello!")


def test_weight_zero_assistant_tokens_are_counted_but_not_trained():
    record = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "first answer", "weight": 0},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "second", "weight": 1},
        ]
    }
    counts = count_tokens(record, "gpt-4o-mini")
    enc = tok.get_encoding("o200k_base")
    assert counts.assistant == len(enc.encode_ordinary("first answer")) + len(enc.encode_ordinary("second"))
    assert counts.trained == len(enc.encode_ordinary("second"))


def test_tools_calls_and_results_are_counted_as_the_engine_renders_them():
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
        {"id": "c2", "type": "function", "function": {"name": "f", "arguments": {"x": 2}}},
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    result = {"role": "tool", "tool_call_id": "c2", "content": '{"ok": true}'}
    bare = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    with_tools = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "tool_calls": calls},
            result,
        ],
        "tools": tools,
    }
    enc = tok.get_encoding("o200k_base")

    def n(text: str) -> int:
        return len(enc.encode_ordinary(text))

    rendered_calls = '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>\n' + tool_format.format_call(
        "f", {"x": 2}
    )
    assert tool_format.calls_text(calls) == rendered_calls
    rendered_result = '<tool_response>{"name": "f", "content": "{\\"ok\\": true}"}</tool_response>'
    assert tool_format.response_text(result, {"c2": "f"}) == rendered_result
    definitions = tool_format.tools_text(tools)
    assert definitions.startswith(tool_format.FALLBACK_INSTRUCTIONS) and '"name": "f"' in definitions
    counts, plain = count_tokens(with_tools), count_tokens(bare)
    message = tok.TOKENS_PER_MESSAGE + n("tool")
    assert counts.total == plain.total + n(rendered_calls) + n(definitions) + message + n(rendered_result)
    assert counts.assistant == counts.trained == plain.assistant + n(rendered_calls)


def test_default_model_counts_with_o200k_and_gpt35_with_cl100k():
    record = {"messages": [{"role": "user", "content": "Tokenization differs between encodings: ¿verdad?"}]}
    assert count_tokens(record) == count_tokens(record, "gpt-4o-mini-2024-07-18")
    o200k = tok.count_openai([record], "o200k_base")[0]
    cl100k = tok.count_openai([record], "cl100k_base")[0]
    assert count_tokens(record).total == o200k.total
    assert count_tokens(record, "gpt-3.5-turbo-0125").total == cl100k.total


def test_special_token_text_is_counted_as_ordinary_text():
    assert count_tokens({"messages": [{"role": "user", "content": "<|endoftext|>"}]}).total > 3 + 1 + 1 + 3


def test_batches_larger_than_a_chunk_count_the_same_as_one_by_one():
    records = [
        {"messages": [{"role": "user", "content": f"question {i} " * (i % 7)}]} for i in range(tok.CHUNK * 2 + 5)
    ]
    batch = tok.count_openai(records, "cl100k_base")
    assert batch[::97] == [tok.count_openai([r], "cl100k_base")[0] for r in records[::97]]


def test_malformed_examples_are_counted_without_crashing():
    assert count_tokens({"messages": ["not a message", {"role": "user", "content": 5}]}).total == 3 + 3 + 1
    assert count_tokens([{"role": "user", "content": "a bare list of messages"}]).total > 6


def test_importing_validation_loads_neither_torch_nor_an_encoding():
    code = (
        "import sys, app.datasets.validation as v, app.datasets.validation.report, app.datasets.validation.launch; "
        "print('torch' in sys.modules, 'transformers' in sys.modules, bool(v.tokens._encodings))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(ROOT))
    assert out.stdout.split() == ["False", "False", "False"]


@pytest.mark.slow
def test_local_models_count_exactly_with_their_own_tokenizer_and_chat_template(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", local_models={"tiny": build_tiny_model(tmp_path / "tiny")})
    messages = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris.", "weight": 0},
        {"role": "user", "content": "Sure?"},
        {"role": "assistant", "content": "Yes, Paris."},
    ]
    counts = count_tokens({"messages": messages}, "tiny", settings)
    engine = count_chat_tokens(settings, "tiny", messages)
    assert counts.exact
    assert (counts.total, counts.assistant, counts.trained) == (engine["total"], engine["assistant"], engine["trained"])
    assert 0 < counts.trained < counts.assistant < counts.total


def test_rows_about_to_be_inserted_get_their_counts_filled_in_one_batch():
    rows = [
        {
            "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
            "tools": None,
            "extra": None,
            "token_counts": None,
        }
        for i in range(3)
    ]
    tok.fill_token_counts(rows)
    assert [r["token_counts"]["o200k_base"] for r in rows] == [count_tokens(r).as_dict() for r in rows]


def test_example_objects_get_their_counts_filled_too():
    example = Example(dataset_id=1, messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    tok.fill_token_counts([example], "cl100k_base")
    assert example.token_counts == {"cl100k_base": count_tokens(example.to_record(), "gpt-3.5-turbo").as_dict()}
