"""The chat engine measures its decoding speed per base model for the model list (DATA_DIR/measured)."""

from __future__ import annotations

from app.engine.chat_types import ChatParams, ModelRef
from app.engine.throughput import MIN_TOKENS, ChatSpeeds
from tests.engine.conftest import TINY

HELLO = [{"role": "user", "content": "Tell me about the quick brown fox"}]


def test_a_long_enough_reply_records_the_base_models_decoding_speed(tiny_chat, tiny_settings):
    speeds = ChatSpeeds(tiny_settings.data_dir)
    assert speeds.read() == {}
    for seed in range(8):  # a random tiny model may end a reply early: sample until one is long enough
        chunks = list(tiny_chat.stream_chat(ModelRef(TINY, TINY), HELLO, ChatParams(max_tokens=40, seed=seed)))
        if chunks[-1].usage["completion_tokens"] > MIN_TOKENS:
            break
    tokens = chunks[-1].usage["completion_tokens"]
    assert tokens > MIN_TOKENS
    measured = speeds.read()[TINY]
    assert measured.tokens == tokens - 1  # the first token's time is the prompt's prefill, not decoding
    assert abs(measured.tokens_per_second - measured.tokens / measured.seconds) <= 0.05 * measured.tokens_per_second


def test_a_short_reply_or_an_unwritable_directory_records_nothing(tmp_path):
    speeds = ChatSpeeds(tmp_path)
    speeds.record("m", MIN_TOKENS - 1, 0.1)
    assert speeds.read() == {}
    (tmp_path / "measured").write_text("a file where the directory would be")
    speeds.record("m", 100, 1.0)  # no error: the reply matters, its speed does not
    assert speeds.read() == {}
