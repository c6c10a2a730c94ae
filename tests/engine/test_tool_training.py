"""Training on tool-calling chats: the calls are trained as the assistant's output, results and definitions are not."""

from __future__ import annotations

import copy
import json

from app.datasets.validation import count_tokens
from app.engine import tool_format as tf
from app.engine.data import encode_dataset
from app.engine.tokenizer import encode_chat, load_tokenizer
from app.engine.train import run_training
from tests.engine.conftest import TINY, make_spec
from tests.engine.test_tool_format import CHAT, LOOKUP
from tests.engine.tool_templates import tools_tokenizer


def _spans(tokenizer, encoded, mask) -> list[str]:
    """The decoded runs of consecutive tokens where mask is set."""
    runs: list[list[int]] = []
    previous = False
    for token, keep in zip(encoded.input_ids, mask, strict=True):
        if keep:
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = keep
    return [tokenizer.decode(run) for run in runs]


def _tool_record(i: int) -> dict:
    order = str(100 + i)
    return {
        "messages": [
            {"role": "user", "content": f"where is order {order}?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [tf.openai_call("lookup_order", {"order_id": order}, f"c{i}")],
            },
            {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"status": "shipped"})},
            {"role": "assistant", "content": f"Order {order} has shipped."},
        ],
        "tools": [LOOKUP],
    }


def test_fallback_labels_are_exactly_the_assistant_turns_with_their_calls(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    encoded = encode_chat(tokenizer, CHAT, [LOOKUP])
    eos = tokenizer.eos_token
    calls = (
        '<tool_call>{"name": "lookup_order", "arguments": {"order_id": "123"}}</tool_call>\n'
        '<tool_call>{"name": "lookup_order", "arguments": {"order_id": "124"}}</tool_call>'
    )
    assert _spans(tokenizer, encoded, encoded.trained) == [
        f"Checking.\n{calls}{eos}",
        f"123 shipped, 124 pending.{eos}",
    ]
    decoded = tokenizer.decode(encoded.input_ids)
    assert tf.tools_text([LOOKUP]) in decoded and "<tool_response>" in decoded  # rendered, but not trained


def test_a_calling_turn_with_weight_zero_is_not_trained(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    messages = copy.deepcopy(CHAT)
    messages[2]["weight"] = 0
    encoded = encode_chat(tokenizer, messages, [LOOKUP])
    eos = tokenizer.eos_token
    assert _spans(tokenizer, encoded, encoded.trained) == [f"123 shipped, 124 pending.{eos}"]
    assert _spans(tokenizer, encoded, encoded.assistant)[0].startswith("Checking.\n<tool_call>")


def test_a_first_assistant_turn_is_trained_after_the_tools_system_turn(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    messages = [{"role": "assistant", "content": "Hello, how can I help?"}]
    encoded = encode_chat(tokenizer, messages, [LOOKUP])
    assert _spans(tokenizer, encoded, encoded.trained) == ["Hello, how can I help?" + tokenizer.eos_token]


def test_native_labels_are_the_assistant_turns_in_the_templates_own_format(tiny_model_dir):
    tokenizer = tools_tokenizer(tiny_model_dir)
    encoded = encode_chat(tokenizer, _tool_record(7)["messages"], [LOOKUP])
    assert _spans(tokenizer, encoded, encoded.trained) == [
        '<tool_call>\n{"name": "lookup_order", "arguments": {"order_id": "107"}}\n</tool_call><|im_end|>',
        "Order 107 has shipped.<|im_end|>",
    ]
    assert "# Tools" in tokenizer.decode(encoded.input_ids)


def test_encode_dataset_renders_each_records_tools(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    record = _tool_record(1)
    with_tools = encode_dataset(tokenizer, [record])
    without = encode_dataset(tokenizer, [{"messages": record["messages"]}])
    definitions = len(tokenizer(tf.tools_text([LOOKUP]), add_special_tokens=False)["input_ids"])
    assert with_tools.total_tokens >= without.total_tokens + definitions
    assert with_tools.trained_tokens == without.trained_tokens > 0


def test_the_tiny_model_trains_on_tool_calls(tiny_settings, tmp_path):
    lines = []
    spec = make_spec(tiny_settings, tmp_path, train_records=[_tool_record(i) for i in range(8)])
    spec["hyperparameters"] = {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 1, "lora_rank": 4}
    assert run_training(spec, lines.append) == "succeeded"
    (result,) = [line for line in lines if line["kind"] == "result"]
    assert result["trained_tokens"] > 0


def test_local_token_counts_include_the_tool_definitions_as_rendered(tiny_settings, tiny_model_dir):
    record = _tool_record(3)
    counts = count_tokens(record, TINY, tiny_settings)
    encoded = encode_chat(load_tokenizer(tiny_model_dir), record["messages"], [LOOKUP])
    assert counts.exact
    assert (counts.total, counts.assistant, counts.trained) == (
        len(encoded.input_ids),
        sum(encoded.assistant),
        sum(encoded.trained),
    )
    assert counts.total > count_tokens({"messages": record["messages"]}, TINY, tiny_settings).total + 100
