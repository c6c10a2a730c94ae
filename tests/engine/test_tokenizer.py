"""Chat rendering and the assistant/trained token masks that training and token counting share."""

from __future__ import annotations

from app.engine.tokenizer import count_chat_tokens, encode_chat, load_tokenizer
from tests.engine.conftest import TINY


def _decoded(tokenizer, encoded, mask):
    return tokenizer.decode([t for t, keep in zip(encoded.input_ids, mask, strict=True) if keep])


def test_only_assistant_text_and_its_end_marker_are_trained(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "Hi there"},
    ]
    encoded = encode_chat(tokenizer, messages)
    assert _decoded(tokenizer, encoded, encoded.trained) == "Hi there" + tokenizer.eos_token


def test_assistant_messages_with_weight_zero_are_counted_but_not_trained(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    messages = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "skip me", "weight": 0},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "learn me ça 😀"},
    ]
    encoded = encode_chat(tokenizer, messages)
    assert _decoded(tokenizer, encoded, encoded.trained) == "learn me ça 😀" + tokenizer.eos_token
    eos = tokenizer.eos_token
    assert _decoded(tokenizer, encoded, encoded.assistant) == f"skip me{eos}learn me ça 😀{eos}"


def test_count_chat_tokens_reports_total_assistant_and_trained(tiny_settings):
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "a", "weight": 0},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "the answer"},
    ]
    counts = count_chat_tokens(tiny_settings, TINY, messages)
    assert counts["total"] > counts["assistant"] > counts["trained"] > 0
