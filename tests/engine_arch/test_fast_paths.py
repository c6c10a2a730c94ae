"""The CPU fast paths serve the architectures whose maths they reproduce, and compute what Hugging Face computes."""

from __future__ import annotations

import random
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM

from app.engine import architectures, cpu_training, native
from app.engine._hf import quiet
from app.engine.batch_decoder import BatchDecoder
from app.engine.cpu_decoder import LlamaDecoder
from app.engine.data import Example, pack, segment_lengths
from app.engine.decoder_parts import supports
from app.engine.lora_model import Stepper, load_lora_model
from app.engine.testing import ARCHITECTURES

FAST_CHAT = ["llama", "mistral", "qwen2", "qwen3"]
FAST_TRAINING = ["llama", "mistral", "qwen2", "qwen3", "phi3"]
MODEL_TYPES = {"gemma3": "gemma3_text"}  # Gemma 3's text-only model
PROMPTS = [[5, 17, 42, 99, 3, 250, 7, 64, 128, 11], [9, 8, 7, 6, 5, 4, 3]]
FOLLOW = [12, 200, 31, 77, 150, 2, 45, 90]


def _hf(model_dir):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_each_architecture_says_which_fast_paths_serve_it(tiny_dirs, architecture):
    found = architectures.read_paths(tiny_dirs[architecture])
    assert found == architectures.Paths(
        MODEL_TYPES.get(architecture, architecture), architecture in FAST_TRAINING, architecture in FAST_CHAT
    )
    model = _hf(tiny_dirs[architecture])
    assert supports(model) is (architecture in FAST_CHAT)
    assert cpu_training.supports_packed_attention(model) is (architecture in FAST_TRAINING)


def test_a_sliding_window_that_binds_keeps_mistral_and_qwen_off_the_fast_paths():
    mistral = {"model_type": "mistral", "sliding_window": 16, "max_position_embeddings": 1024}
    assert not architectures.fast_chat(mistral) and not architectures.fast_training(mistral)
    # Qwen2.5's config names a window it does not use.
    qwen = {"model_type": "qwen2", "sliding_window": 32768, "use_sliding_window": False}
    assert architectures.fast_chat(qwen) and architectures.fast_training(qwen)
    # Mistral 7B v0.1's window is its whole context here.
    assert architectures.fast_chat({"model_type": "mistral", "sliding_window": 4096, "max_position_embeddings": 4096})


def _teacher_forced(decoder: LlamaDecoder, prompt: list[int]) -> torch.Tensor:
    cache = decoder.new_cache(len(prompt) + len(FOLLOW))
    logits = [decoder.forward(prompt, cache)]
    logits += [decoder.forward([token], cache) for token in FOLLOW]
    return torch.stack(logits)


def _kernels(tmp_path):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        return []
    library = native.load(tmp_path / "kernels")
    assert library is not None, "the C kernels did not build"
    return [library]


@pytest.mark.parametrize("architecture", FAST_CHAT)
def test_the_cpu_decoder_forward_matches_the_hf_forward(tiny_dirs, architecture, tmp_path):
    model = _hf(tiny_dirs[architecture])
    with torch.inference_mode():
        reference = [model(torch.tensor([p + FOLLOW])).logits[0, len(p) - 1 :] for p in PROMPTS]
        for kernels in [None, *_kernels(tmp_path)]:
            decoder = LlamaDecoder(model, "fp32", kernels)
            for prompt, expected in zip(PROMPTS, reference, strict=True):
                assert torch.allclose(_teacher_forced(decoder, prompt), expected, atol=1e-4, rtol=1e-4), kernels
            # The batched step (evals) over both prompts at once, each row at its own position.
            batch = BatchDecoder(decoder)
            caches = [batch.new_cache(len(p) + len(FOLLOW)) for p in PROMPTS]
            rows = [[batch.prefill(p, cache)] for p, cache in zip(PROMPTS, caches, strict=True)]
            for token in FOLLOW:
                for row, logits in zip(rows, batch.step([token, token], caches), strict=True):
                    row.append(logits)
            for row, expected in zip(rows, reference, strict=True):
                assert torch.allclose(torch.stack(row), expected, atol=1e-4, rtol=1e-4), kernels


@pytest.mark.parametrize("architecture", FAST_CHAT)
def test_the_cpu_decoder_serves_an_unmerged_adapter_as_the_merged_model(tiny_dirs, architecture):
    """Quantized chat keeps the LoRA update unmerged: with float32 weights it equals the merged model's forward."""
    from peft import LoraConfig, get_peft_model

    model = _hf(tiny_dirs[architecture])
    torch.manual_seed(3)
    with quiet():
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    with torch.inference_mode():
        decoder = LlamaDecoder(peft_model.get_base_model(), "fp32")
        unmerged = _teacher_forced(decoder, PROMPTS[0])
        merged = peft_model.merge_and_unload()
        expected = merged(torch.tensor([PROMPTS[0] + FOLLOW])).logits[0, len(PROMPTS[0]) - 1 :]
    assert torch.allclose(unmerged, expected, atol=1e-4, rtol=1e-4)


def _examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        length = rng.randint(4, 30)
        ids = [rng.randint(3, 300) for _ in range(length)]
        examples.append(Example(ids, [False] * (length // 2) + [True] * (length - length // 2)))
    return examples


def _lora_model(model_dir):
    """A LoRA model whose B matrices are not zero, so the adapters change the loss and A gets gradients."""
    model = load_lora_model(model_dir, 4, "cpu", 1)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    return model


def _loss_and_grads(stepper: Stepper, rows) -> tuple[float, dict[str, torch.Tensor]]:
    total = 0.0
    stepper.model.zero_grad(set_to_none=True)
    for row in rows:
        loss, _, _ = stepper.row_loss(*row)
        loss.backward()
        total += float(loss.detach())
    return total, {n: q.grad.clone() for n, q in stepper.model.named_parameters() if q.requires_grad}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_cpu_training_path_matches_the_hf_forward_in_loss_and_gradients(tiny_dirs, architecture):
    """Packed attention where the architecture allows it, the fused LoRA forward everywhere: PEFT's own numbers."""
    rows = pack(_examples(7), 64)
    assert any(len(segment_lengths(row[1])) > 1 for row in rows)
    reference = Stepper(_lora_model(tiny_dirs[architecture]), "cpu", None)
    prepared = _lora_model(tiny_dirs[architecture])
    packed = cpu_training.prepare(prepared, None)
    assert packed is (architecture in FAST_TRAINING)
    fast = Stepper(prepared, "cpu", None, packed=packed)
    ref_loss, ref_grads = _loss_and_grads(reference, rows)
    fast_loss, fast_grads = _loss_and_grads(fast, rows)
    assert fast_loss == pytest.approx(ref_loss, rel=1e-5)
    assert ref_grads.keys() == fast_grads.keys()
    for name, grad in ref_grads.items():
        assert grad.abs().sum() > 0, name
        assert (fast_grads[name] - grad).abs().max() <= 1e-4 * grad.abs().max() + 1e-7, name


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_lora_adapters_sit_on_every_attention_and_mlp_projection(tiny_dirs, architecture):
    model = load_lora_model(tiny_dirs[architecture], 4, "cpu", 1)
    adapted = {name.split(".lora_A.")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_A" in name}
    expected = (
        {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
        if architecture == "phi3"
        else {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    )
    assert adapted == expected
