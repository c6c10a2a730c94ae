"""The compiled decode steps (decode_kernels.c via native.py) against the torch decode and the HF forward."""

from __future__ import annotations

import shutil

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from app.engine import native
from app.engine._hf import quiet
from app.engine.cpu_decoder import QUANTIZED, LlamaDecoder

PROMPT = [5, 17, 42, 99, 3, 250, 7, 64, 128, 11]
N = 24

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")


@pytest.fixture(scope="module")
def hf_model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    library = native.load(tmp_path_factory.mktemp("kernels"))
    assert library is not None, "the C kernels did not build"
    return library


def _decode(decoder: LlamaDecoder, prompt: list[int], tokens: list[int]) -> list[torch.Tensor]:
    """Logits after the prompt and after each of `tokens` fed one at a time (teacher-forced)."""
    cache = decoder.new_cache(len(prompt) + len(tokens))
    logits = [decoder.forward(prompt, cache)]
    logits += [decoder.forward([token], cache) for token in tokens]
    return logits


def _greedy(decoder: LlamaDecoder, prompt: list[int], n: int) -> list[int]:
    cache = decoder.new_cache(len(prompt) + n)
    logits, tokens = decoder.forward(prompt, cache), []
    for _ in range(n):
        tokens.append(int(torch.argmax(logits)))
        logits = decoder.forward([tokens[-1]], cache)
    return tokens


def test_float32_native_decoding_matches_the_hf_forward(hf_model, kernels):
    decoder = LlamaDecoder(hf_model, "fp32", kernels)
    assert decoder.kernels is kernels
    with torch.inference_mode():
        expected = hf_model.generate(
            torch.tensor([PROMPT]),
            max_new_tokens=N,
            do_sample=False,
            min_new_tokens=N,
            eos_token_id=None,
            pad_token_id=0,
        )[0, len(PROMPT) :].tolist()
        tokens = _greedy(decoder, PROMPT, N)
        logits = _decode(decoder, PROMPT, tokens)
        reference = hf_model(torch.tensor([PROMPT + tokens])).logits[0, len(PROMPT) - 1 :]
    assert tokens == expected
    assert torch.allclose(torch.stack(logits), reference, atol=1e-4, rtol=1e-4)


def test_quantized_native_decoding_matches_the_torch_decode(hf_model, kernels):
    with torch.inference_mode():
        plain = LlamaDecoder(hf_model, QUANTIZED)
        tokens = _greedy(plain, PROMPT, N)
        expected = _decode(plain, PROMPT, tokens)
        native_decoder = LlamaDecoder(hf_model, QUANTIZED, kernels)
        assert _greedy(native_decoder, PROMPT, N) == tokens
        got = _decode(native_decoder, PROMPT, tokens)
    # bf16 matmul inputs: a sum in another order can round one input element differently, nothing more.
    for a, b in zip(expected, got, strict=True):
        assert float((a - b).norm() / a.norm()) < 1e-2


def test_native_decoding_follows_the_cache_when_it_grows(hf_model, kernels):
    decoder = LlamaDecoder(hf_model, "fp32", kernels)
    with torch.inference_mode():
        cache = decoder.new_cache(0)
        first = cache.keys.shape[2]
        follow = [t % 300 + 1 for t in range(first + 8)]
        decoder.forward(PROMPT, cache)
        for token in follow[:-1]:
            decoder.forward([token], cache)
        logits = decoder.forward(follow[-1:], cache)
        direct = hf_model(torch.tensor([PROMPT + follow])).logits[0, -1]
    assert cache.keys.shape[2] > first and cache.native.scores.numel() >= decoder.n_heads * cache.length
    assert torch.allclose(logits, direct, atol=1e-4, rtol=1e-4)


def test_an_unmerged_adapter_decodes_natively_like_the_merged_model(tiny_model_dir, kernels):
    """WithLoRA linears return float32, the quantized ones bf16: the kernels read either."""
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    torch.manual_seed(3)
    with quiet():
        peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)  # a fresh adapter's B is zero: give it an effect to get right
    with torch.inference_mode():
        unmerged = LlamaDecoder(peft_model.get_base_model(), "fp32", kernels)
        tokens = _greedy(unmerged, PROMPT, 12)
        got = _decode(unmerged, PROMPT, tokens)
        with quiet():
            merged = peft_model.merge_and_unload()
        reference = merged(torch.tensor([PROMPT + tokens])).logits[0, len(PROMPT) - 1 :]
    assert torch.allclose(torch.stack(got), reference, atol=1e-4, rtol=1e-4)


def test_the_library_is_built_once_and_reused(tmp_path, monkeypatch):
    directory = tmp_path / "kernels"
    monkeypatch.setattr(native, "_loaded", {})  # a fresh process
    first = native.load(directory)
    built = list(directory.glob("*.so"))
    assert first is not None and len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    native._loaded.clear()  # another new process: loads the cached file, compiles nothing
    monkeypatch.setattr(native, "_build", lambda *args: pytest.fail("rebuilt a cached library"))
    assert native.load(directory) is not None
    assert built[0].stat().st_mtime_ns == stamp


def test_without_a_working_compiler_the_torch_path_stays(tmp_path, monkeypatch, hf_model):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert native.load(tmp_path / "kernels") is None
    assert not list((tmp_path / "kernels").glob("*.so"))
    decoder = LlamaDecoder(hf_model, "fp32", None)
    assert decoder.new_cache(4).native is None


def test_two_conversations_decode_at_once_like_one_at_a_time(hf_model, kernels):
    """The C calls run without the GIL: two threads share the weights and rope tables, each with its own cache.
    The second prompt is long enough to grow the shared rope tables while the first conversation decodes."""
    from concurrent.futures import ThreadPoolExecutor

    decoder = LlamaDecoder(hf_model, QUANTIZED, kernels)
    prompts = [PROMPT, [(7 * i) % 300 + 1 for i in range(300)]]
    with torch.inference_mode():
        alone = [_greedy(decoder, prompt, 16) for prompt in prompts]
        fresh = LlamaDecoder(hf_model, QUANTIZED, kernels)  # rope tables not yet grown, as in a new process

        def run(prompt):
            with torch.inference_mode():
                return _greedy(fresh, prompt, 16)

        with ThreadPoolExecutor(2) as pool:
            together = list(pool.map(run, prompts))
    assert together == alone
