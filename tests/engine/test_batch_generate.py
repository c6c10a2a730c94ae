"""Batched generation on the tiny model: the replies stream_chat gives one by one, per-item errors, stop, callbacks."""

from __future__ import annotations

import pytest
import torch

from app.config import Settings
from app.engine import _hf, batch_generate, cpu_decoder, decoder_parts
from app.engine.batch_decoder import BatchDecoder
from app.engine.chat_types import ChatParams, Completion, ModelRef
from app.engine.inference import ChatEngine
from app.errors import Invalid
from tests.conftest import make_settings
from tests.engine.conftest import TINY

REF = ModelRef(TINY, TINY)
# Prompts of different lengths (and turns), so rows of a batch sit at different positions of their caches.
CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Tell me about the quick fox"}],
    [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Japan? 日本語"},
    ],
    [{"role": "user", "content": "hello world " * 20}],
    [{"role": "user", "content": "0123456789"}],
    [{"role": "user", "content": "Tell me a joke about cats."}],
    [{"role": "user", "content": '{"answer": "yes", "confidence": 0.9}'}],
    [{"role": "user", "content": "Héllo wörld, ça va? 😀"}],
]
GREEDY = ChatParams(temperature=0, max_tokens=12)


def _one_by_one(chat: ChatEngine, conversations, params: ChatParams, ref: ModelRef = REF) -> list[tuple]:
    """(text, finish_reason, prompt_tokens, completion_tokens) of each conversation through stream_chat."""
    replies = []
    for messages in conversations:
        chunks = list(chat.stream_chat(ref, messages, params))
        usage = chunks[-1].usage
        text = "".join(c.text for c in chunks)
        replies.append((text, chunks[-1].finish_reason, usage["prompt_tokens"], usage["completion_tokens"]))
    return replies


def _summary(completions: list[Completion]) -> list[tuple]:
    return [(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens) for c in completions]


def _engine(tiny_model_dir, tmp_path, **overrides) -> ChatEngine:
    return ChatEngine(make_settings(tmp_path / "data", local_models={TINY: tiny_model_dir}, **overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # the default: 4-bit weights, compiled kernels
        {"engine_spin": "on"},  # every thread: rows split into one group per thread
        {"engine_native": False},  # torch ops
        {"engine_quantize": False},  # float32 weights
    ],
    ids=["default", "threads", "torch", "fp32"],
)
def test_greedy_batched_replies_equal_one_by_one_replies(tiny_model_dir, tmp_path, monkeypatch, overrides):
    groups: list[int] = []  # sizes of the groups run on threads of their own (prefills and steps)
    on_one_thread = batch_generate._on_one_thread
    monkeypatch.setattr(
        batch_generate, "_on_one_thread", lambda work, items: groups.append(len(items)) or on_one_thread(work, items)
    )
    if overrides.get("engine_spin") == "on":
        monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # as on a machine of 2 cores or more
    with _engine(tiny_model_dir, tmp_path, **overrides) as chat:
        expected = _one_by_one(chat, CONVERSATIONS, GREEDY)
        # 3 slots for 8 conversations: ended replies hand their slot to waiting ones; 8 slots: all at once.
        for batch_size in (3, 8):
            assert _summary(chat.generate_batch(REF, CONVERSATIONS, GREEDY, batch_size=batch_size)) == expected
        assert chat.get_model(REF).decoder is not None
    assert bool(groups) == (overrides.get("engine_spin") == "on")  # rows and prompts split, a group per thread


def test_a_row_of_a_batched_step_gets_the_bits_it_gets_decoded_alone(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from app.engine import native

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    kernels = native.load(tiny_model_dir.parent / "kernels")
    if kernels is None:
        pytest.skip("no C compiler here")
    decoder = cpu_decoder.LlamaDecoder(model, cpu_decoder.QUANTIZED, kernels)
    batch = BatchDecoder(decoder)
    prompts = [[5, 17, 42, 99, 3], [7], [250, 7, 64, 128, 11, 12, 13, 14, 15]]
    follow = [[3, 9, 27], [81, 2, 4], [8, 16, 32]]
    with torch.inference_mode():
        alone = []
        for prompt, tokens in zip(prompts, follow, strict=True):
            cache = decoder.new_cache(len(prompt) + len(tokens))
            logits = [decoder.forward(prompt, cache)] + [decoder.forward([t], cache) for t in tokens]
            alone.append(logits)
        caches = [batch.new_cache(len(p) + len(t) + 1) for p, t in zip(prompts, follow, strict=True)]
        first = [batch.prefill(p, c) for p, c in zip(prompts, caches, strict=True)]
        assert first[1] is None  # a one-token prompt goes through the batched step at position 0
        stepped = batch.step([7], [caches[1]])[0]
        assert torch.equal(stepped, alone[1][0])
        assert torch.equal(first[0], alone[0][0]) and torch.equal(first[2], alone[2][0])
        for step in range(3):
            logits = batch.step([tokens[step] for tokens in follow], caches)
            for row in range(3):
                assert torch.equal(logits[row], alone[row][step + 1])


def test_the_start_prompts_share_is_prefilled_once_with_the_bits_of_a_whole_prefill(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from app.engine import native

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    decoder = cpu_decoder.LlamaDecoder(model, cpu_decoder.QUANTIZED, native.load(tiny_model_dir.parent / "kernels"))
    start = [(7 * i) % 300 + 3 for i in range(37)]
    prompts = [[*start, 5, 9], [*start, 11], start + list(range(40, 90)), [*start[:33], 2, 2]]
    batch = BatchDecoder(decoder)
    with torch.inference_mode():
        prefix = batch.share_prefix(prompts)
        assert prefix is not None and prefix.ids == start[:32]  # cut to a multiple of 16 of the common 33
        for prompt in prompts:
            whole, shared = decoder.new_cache(len(prompt)), batch.new_cache(len(prompt))
            assert torch.equal(decoder.forward(prompt, whole), batch.prefill(prompt, shared))
            assert torch.equal(whole.keys[:, :, : len(prompt)], shared.keys[:, :, : len(prompt)])
            assert torch.equal(whole.values[:, :, : len(prompt)], shared.values[:, :, : len(prompt)])
        assert BatchDecoder(decoder).share_prefix([[*start[:20], 1], [*start[:12], 2, 3, 4, 5, 6, 7, 8, 9]]) is None


def test_conversations_with_a_shared_system_prompt_get_the_replies_of_one_by_one(tiny_chat, monkeypatch):
    shared: list[object] = []
    share = BatchDecoder.share_prefix
    monkeypatch.setattr(BatchDecoder, "share_prefix", lambda self, prompts: shared.append(share(self, prompts)))
    system = {"role": "system", "content": "You are a helpful assistant. " * 4}
    conversations = [[system, *messages] for messages in CONVERSATIONS if messages[0]["role"] == "user"]
    expected = _one_by_one(tiny_chat, conversations, GREEDY)
    assert _summary(tiny_chat.generate_batch(REF, conversations, GREEDY, batch_size=3)) == expected
    assert shared and shared[0] is not None


def test_a_lora_adapter_gives_the_same_batched_and_one_by_one_replies(tiny_model_dir, tiny_chat, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    # Random A and B (not the no-op init), so the adapter changes the replies.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False)
    with _hf.quiet():
        get_peft_model(model, config).save_pretrained(tmp_path / "adapter")
    tuned = ModelRef("ft:tiny", TINY, tmp_path / "adapter")
    expected = _one_by_one(tiny_chat, CONVERSATIONS, GREEDY, tuned)
    assert _summary(tiny_chat.generate_batch(tuned, CONVERSATIONS, GREEDY, batch_size=4)) == expected
    assert expected != _one_by_one(tiny_chat, CONVERSATIONS, GREEDY)


def test_seeded_sampling_and_stop_strings_follow_stream_chat(tiny_chat):
    sampled = ChatParams(temperature=0.9, top_p=0.8, max_tokens=16, seed=42)
    expected = _one_by_one(tiny_chat, CONVERSATIONS, sampled)
    assert _summary(tiny_chat.generate_batch(REF, CONVERSATIONS, sampled, batch_size=4)) == expected
    full = tiny_chat.generate_batch(REF, CONVERSATIONS, ChatParams(temperature=0, max_tokens=30))
    text = max((c.text for c in full), key=len)
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    stopping = ChatParams(temperature=0, max_tokens=30, stop=[stop, "never appears"])
    completions = tiny_chat.generate_batch(REF, CONVERSATIONS, stopping, batch_size=4)
    assert _summary(completions) == _one_by_one(tiny_chat, CONVERSATIONS, stopping)
    cut = [c for c, whole in zip(completions, full, strict=True) if stop in whole.text]
    assert cut and all(c.finish_reason == "stop" and stop not in c.text for c in cut)


def test_max_tokens_sets_the_finish_reason_and_usage(tiny_chat):
    completions = tiny_chat.generate_batch(REF, CONVERSATIONS, ChatParams(temperature=0, max_tokens=3))
    tokenizer = tiny_chat.get_model(REF).tokenizer
    for completion, messages in zip(completions, CONVERSATIONS, strict=True):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert completion.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        assert completion.completion_tokens <= 3 and completion.error is None
        assert completion.finish_reason == ("length" if completion.completion_tokens == 3 else "stop")
        assert completion.usage["total_tokens"] == completion.prompt_tokens + completion.completion_tokens
    with pytest.raises(Invalid):
        tiny_chat.generate_batch(REF, CONVERSATIONS, ChatParams(max_tokens=0))


def test_a_conversation_that_cannot_be_generated_errors_alone(tiny_chat):
    too_long = [{"role": "user", "content": "fox " * 3000}]
    conversations = [CONVERSATIONS[0], too_long, [], CONVERSATIONS[1]]
    completions = tiny_chat.generate_batch(REF, conversations, GREEDY)
    assert completions[1].finish_reason == "error" and completions[1].error_code == "context_length_exceeded"
    assert completions[1].prompt_tokens > 1000 and completions[1].text == ""
    assert completions[2].finish_reason == "error" and completions[2].error
    assert _summary([completions[0], completions[3]]) == _one_by_one(
        tiny_chat, [CONVERSATIONS[0], CONVERSATIONS[1]], GREEDY
    )


def test_on_done_is_called_once_per_item_as_each_ends(tiny_chat):
    calls: list[tuple[int, Completion]] = []
    conversations = [*CONVERSATIONS, []]
    completions = tiny_chat.generate_batch(
        REF, conversations, GREEDY, batch_size=2, on_done=lambda i, c: calls.append((i, c))
    )
    assert sorted(index for index, _ in calls) == list(range(len(conversations)))
    assert all(completions[index] is completion for index, completion in calls)


def test_should_stop_ends_the_batch_and_cancels_the_unfinished(tiny_chat):
    params = ChatParams(temperature=0, max_tokens=40)
    checks = []

    def stop_after_two_steps() -> bool:
        checks.append(1)
        return len(checks) > 2

    calls = []
    completions = tiny_chat.generate_batch(
        REF, CONVERSATIONS, params, should_stop=stop_after_two_steps, batch_size=2, on_done=lambda i, c: calls.append(i)
    )
    canceled = [i for i, c in enumerate(completions) if c.error_code == "canceled"]
    assert len(checks) == 3 and len(canceled) >= len(CONVERSATIONS) - 2
    assert all(completions[i].finish_reason == "error" for i in canceled)
    assert sorted(calls) == [i for i in range(len(CONVERSATIONS)) if i not in canceled]
    stopped = tiny_chat.generate_batch(REF, CONVERSATIONS, params, should_stop=lambda: True, on_done=calls.append)
    assert all(c.error_code == "canceled" for c in stopped)


def test_models_without_the_cpu_decoder_generate_through_the_hf_forward(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(decoder_parts, "supports", lambda model: False)
    with _engine(tiny_model_dir, tmp_path, engine_quantize=False) as chat:
        assert chat.get_model(REF).decoder is None
        expected = _one_by_one(chat, CONVERSATIONS, GREEDY)
        assert _summary(chat.generate_batch(REF, CONVERSATIONS, GREEDY, batch_size=3)) == expected


def test_the_batch_size_defaults_to_the_eval_batch_size_setting(tmp_path, monkeypatch, tiny_chat):
    assert Settings(data_dir=tmp_path).eval_batch_size == 16
    monkeypatch.setenv("TUNEBOARD_EVAL_BATCH_SIZE", "4")
    assert Settings(data_dir=tmp_path).eval_batch_size == 4
    seen: list[int] = []
    monkeypatch.setattr(BatchDecoder, "step", _counting(BatchDecoder.step, seen))
    tiny_chat.settings = make_settings(
        tmp_path / "data", local_models=tiny_chat.settings.local_models, eval_batch_size=2
    )
    tiny_chat.generate_batch(REF, CONVERSATIONS, GREEDY)
    assert max(seen) == 2


def _counting(method, seen: list[int]):
    """The method, recording the length of its first argument (the rows or tokens of a step) at each call."""

    def counted(self, rows, *args):
        seen.append(len(rows))
        return method(self, rows, *args)

    return counted
