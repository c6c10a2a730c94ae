"""The CPU chat decoder against the Hugging Face forward on the tiny model: same greedy tokens, close logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from app.engine.cpu_decoder import QUANTIZED, LlamaDecoder
from app.engine.decoder_parts import RESCORED, Head, supports

PROMPT = [5, 17, 42, 99, 3, 250, 7, 64, 128, 11]
N = 24


@pytest.fixture(scope="module")
def hf_model(tiny_model_dir):
    """The tiny model through transformers, float32."""
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def _greedy(decoder: LlamaDecoder, prompt: list[int], n: int) -> tuple[list[int], list[torch.Tensor]]:
    cache = decoder.new_cache(len(prompt) + n)
    logits = decoder.forward(prompt, cache)
    tokens, all_logits = [], [logits]
    for _ in range(n):
        tokens.append(int(torch.argmax(logits)))
        logits = decoder.forward([tokens[-1]], cache)
        all_logits.append(logits)
    return tokens, all_logits


def test_the_decoder_float32_path_makes_the_same_greedy_tokens_as_the_hf_forward(hf_model):
    assert supports(hf_model)
    with torch.inference_mode():
        expected = hf_model.generate(
            torch.tensor([PROMPT]),
            max_new_tokens=N,
            do_sample=False,
            min_new_tokens=N,
            eos_token_id=None,
            pad_token_id=0,
        )[0, len(PROMPT) :].tolist()
        tokens, logits = _greedy(LlamaDecoder(hf_model, "fp32"), PROMPT, N)
        reference = hf_model(torch.tensor([PROMPT + tokens])).logits[0, len(PROMPT) - 1 :]
    assert tokens == expected
    assert torch.allclose(torch.stack(logits), reference, atol=1e-4, rtol=1e-4)


def test_the_kv_cache_grows_when_a_reply_outlasts_its_first_allocation(hf_model):
    decoder = LlamaDecoder(hf_model, "fp32")
    with torch.inference_mode():
        cache = decoder.new_cache(0)
        first = cache.keys.shape[2]
        follow = [t % 300 + 1 for t in range(first)]
        decoder.forward(PROMPT, cache)
        for token in follow[:-1]:
            decoder.forward([token], cache)
        logits = decoder.forward(follow[-1:], cache)
        direct = hf_model(torch.tensor([PROMPT + follow])).logits[0, -1]
    assert cache.length == len(PROMPT) + first and cache.keys.shape[2] > first
    assert torch.allclose(logits, direct, atol=1e-4, rtol=1e-4)


def test_quantized_weights_stay_close_to_float32(hf_model):
    with torch.inference_mode():
        _, exact = _greedy(LlamaDecoder(hf_model, "fp32"), PROMPT, 4)
        _, quantized = _greedy(LlamaDecoder(hf_model, QUANTIZED), PROMPT, 4)
    # Random Gaussian weights are the worst case for 4 bits (~10% here; real SmolLM2 logits move ~4%, and a broken
    # scale or zero point gives ~100%): the bound catches bugs, the bench measures quality on the real model.
    for a, b in zip(exact, quantized, strict=True):
        assert float((a - b).norm() / a.norm()) < 0.2


def test_the_4bit_head_gives_its_top_candidates_exact_float32_logits():
    torch.manual_seed(0)
    weight, hidden = torch.randn(500, 64), torch.randn(1, 64)
    exact = F.linear(hidden, weight)[0]
    logits = Head("w4", weight, weight)(hidden)
    top = torch.topk(logits, RESCORED).indices
    assert torch.equal(logits[top], exact[top])
    assert int(torch.argmax(logits)) == int(torch.argmax(exact))
    assert float((logits - exact).norm() / exact.norm()) < 0.2  # the rest: 4-bit estimates, close


def test_decoding_on_two_threads_gives_the_same_tokens_and_restores_the_thread_count(hf_model):
    decoder = LlamaDecoder(hf_model, QUANTIZED)
    before = torch.get_num_threads()
    try:
        with torch.inference_mode():
            torch.set_num_threads(1)
            single, _ = _greedy(decoder, PROMPT, 8)
            torch.set_num_threads(2)
            double, _ = _greedy(decoder, PROMPT, 8)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert single == double


def test_models_of_other_shapes_keep_the_hf_forward(hf_model):
    hf_model.config.mlp_bias = True
    try:
        assert not supports(hf_model)
    finally:
        hf_model.config.mlp_bias = False
