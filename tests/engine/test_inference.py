"""Streaming chat on the tiny model: greedy and seeded sampling, stop strings, limits, adapters, threads."""

from __future__ import annotations

import random
import threading

import pytest

from app.engine.chat_types import ChatParams, ModelRef
from app.engine.decoding import Detokenizer
from app.engine.train import run_training
from app.errors import Invalid
from tests.engine.conftest import TINY, make_spec

HELLO = [{"role": "user", "content": "Tell me about the quick brown fox"}]


def _run(chat_engine, params, ref=None, messages=HELLO):
    chunks = list(chat_engine.stream_chat(ref or ModelRef(TINY, TINY), messages, params))
    return "".join(c.text for c in chunks), chunks


def test_greedy_decoding_is_deterministic_and_ends_with_usage(tiny_chat):
    text1, chunks = _run(tiny_chat, ChatParams(temperature=0, max_tokens=12))
    text2, _ = _run(tiny_chat, ChatParams(temperature=0, max_tokens=12))
    final = chunks[-1]
    assert text1 == text2
    assert final.finish_reason in ("stop", "length") and all(c.finish_reason is None for c in chunks[:-1])
    usage = final.usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] <= 12
    if final.finish_reason == "length":
        assert usage["completion_tokens"] == 12


def test_max_tokens_caps_the_completion_and_reports_length(tiny_chat):
    _, chunks = _run(tiny_chat, ChatParams(temperature=1.0, max_tokens=3, seed=1))
    assert chunks[-1].usage["completion_tokens"] <= 3
    assert chunks[-1].finish_reason == ("length" if chunks[-1].usage["completion_tokens"] == 3 else "stop")


def test_the_same_seed_samples_the_same_reply(tiny_chat):
    first, _ = _run(tiny_chat, ChatParams(temperature=0.9, top_p=0.8, max_tokens=16, seed=42))
    second, _ = _run(tiny_chat, ChatParams(temperature=0.9, top_p=0.8, max_tokens=16, seed=42))
    assert first == second


def test_a_stop_string_cuts_the_reply_before_it(tiny_chat):
    full, _ = _run(tiny_chat, ChatParams(temperature=1.0, max_tokens=40, seed=3))
    visible = [i for i, ch in enumerate(full) if i > 2 and not ch.isspace() and ch != "\ufffd"]
    if not visible:
        pytest.skip("the random model produced no usable text for this seed")
    cut = visible[len(visible) // 2]
    stop = full[cut : cut + 2]
    text, chunks = _run(tiny_chat, ChatParams(temperature=1.0, max_tokens=40, seed=3, stop=[stop]))
    assert text == full[: full.find(stop)]
    assert chunks[-1].finish_reason == "stop"


def test_streamed_deltas_never_split_a_multibyte_character(tiny_chat):
    text, chunks = _run(tiny_chat, ChatParams(temperature=1.5, max_tokens=48, seed=5))
    for chunk in chunks[:-1]:
        assert "\ufffd" not in chunk.text or "\ufffd" in text.rstrip("\ufffd")


def test_the_streamed_text_equals_decoding_the_whole_reply_at_once(tiny_model_dir):
    from app.engine.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    rng = random.Random(7)
    text = 'Héllo wörld, ça va? 日本語 のテキスト 😀 {"answer": 1}'
    sequences = [tokenizer(text, add_special_tokens=False)["input_ids"]]
    sequences += [[rng.randrange(len(tokenizer)) for _ in range(rng.randint(1, 30))] for _ in range(200)]
    for ids in sequences:
        detokenizer = Detokenizer(tokenizer)
        for token in ids:
            streamed = detokenizer.add(token)
        whole = tokenizer.decode(ids, skip_special_tokens=True)
        assert streamed.rstrip("\ufffd") == whole.rstrip("\ufffd")


def test_a_conversation_longer_than_the_context_is_refused_clearly(tiny_chat):
    long = [{"role": "user", "content": "fox " * 3000}]
    with pytest.raises(Invalid) as info:
        list(tiny_chat.stream_chat(ModelRef(TINY, TINY), long, ChatParams(max_tokens=4)))
    assert info.value.code == "context_length_exceeded"


def test_loaded_models_are_reused_from_the_cache_until_the_engine_closes(tiny_chat):
    ref = ModelRef(TINY, TINY)
    loaded = tiny_chat.get_model(ref)
    assert tiny_chat.get_model(ref) is loaded
    tiny_chat.close()
    assert tiny_chat.get_model(ref) is not loaded


def test_two_threads_chatting_at_once_get_the_same_replies_as_one_at_a_time(tiny_chat):
    params = ChatParams(temperature=0, max_tokens=10)
    expected, _ = _run(tiny_chat, params)
    results = []

    def worker():
        results.append(_run(tiny_chat, params)[0])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [expected, expected]


def test_a_trained_adapter_is_served_merged_and_differs_from_the_base(tiny_settings, tiny_chat, tmp_path):
    spec = make_spec(
        tiny_settings,
        tmp_path,
        hyperparameters={"n_epochs": 3, "batch_size": 2, "learning_rate_multiplier": 10, "lora_rank": 4},
    )
    assert run_training(spec, lambda line: None) == "succeeded"
    adapter = tmp_path / "out" / "adapter"
    prompt = [{"role": "user", "content": "add 3 and 3"}]
    params = ChatParams(temperature=0, max_tokens=8)
    base, _ = _run(tiny_chat, params, messages=prompt)
    tuned, chunks = _run(tiny_chat, params, ModelRef("ft:tiny", TINY, adapter), messages=prompt)
    assert chunks[-1].finish_reason in ("stop", "length")
    assert tuned != base
