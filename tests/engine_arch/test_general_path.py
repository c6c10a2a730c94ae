"""Every architecture trains and chats through the general transformers + PEFT path, with its own chat template;
an architecture the fast paths do not know falls back to it without error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from app.engine.catalog import list_base_models
from app.engine.chat_types import ChatParams, ModelRef
from app.engine.inference import ChatEngine
from app.engine.lora_model import Stepper, load_lora_model
from app.engine.testing import ARCHITECTURES, FAMILIES
from app.engine.tokenizer import count_chat_tokens, load_tokenizer
from app.engine.train import run_training
from tests.conftest import make_settings
from tests.engine.conftest import make_spec, number_records
from tests.engine_arch.test_fast_paths import FAST_CHAT

GREEDY = ChatParams(temperature=0, max_tokens=12)
CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
TOOL_CHAT = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    {"role": "assistant", "content": "It is sunny."},
]


def _losses(spec: dict) -> list[float]:
    lines: list[dict] = []
    assert run_training(spec, lines.append) == "succeeded", [line for line in lines if line["kind"] == "error"]
    return [e["data"]["train_loss"] for e in lines if e["kind"] == "event" and e["type"] == "metrics"]


def _job(settings, tmp_path: Path, model: str) -> dict:
    return make_spec(
        settings,
        tmp_path,
        train_records=number_records(8),
        base_model=model,
        fine_tuned_model=f"ft:{model}:test:ftjob-test",
        hyperparameters={"n_epochs": 4, "batch_size": 4, "learning_rate_multiplier": 5, "lora_rank": 4},
    )


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_short_lora_job_lowers_the_loss_and_its_model_chats(arch_settings, engine, tmp_path, architecture):
    spec = _job(arch_settings, tmp_path, architecture)
    losses = _losses(spec)
    assert len(losses) == 8
    assert losses[-1] < 0.95 * losses[0]
    tuned = ModelRef(name="tuned", base_model=architecture, adapter_path=Path(spec["output_dir"]) / "adapter")
    chunks = list(engine.stream_chat(tuned, CHAT, GREEDY))
    assert chunks[-1].usage is not None and chunks[-1].usage["completion_tokens"] > 0


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_training_loss_is_the_hf_forward_loss(tiny_dirs, architecture):
    """The Stepper scores what the model's own forward scores (Gemma 2's soft-capped logits included)."""
    model = load_lora_model(tiny_dirs[architecture], 4, "cpu", 1)
    ids = [5, 17, 42, 99, 3, 250, 7, 64, 128, 11, 31, 77]
    with torch.no_grad():
        loss, n, _ = Stepper(model, "cpu", None).row_loss(ids, list(range(len(ids))), [True] * len(ids))
        expected = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
    assert float(loss) / n == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_greedy_chat_answers_and_batched_generation_agrees(engine, architecture):
    ref = ModelRef(name=architecture, base_model=architecture)
    chunks = list(engine.stream_chat(ref, CHAT, GREEDY))
    assert chunks[-1].usage is not None and chunks[-1].usage["completion_tokens"] > 0
    assert (engine.get_model(ref).decoder is not None) is (architecture in FAST_CHAT)
    text = "".join(chunk.text for chunk in chunks)
    [completion] = engine.generate_batch(ref, [CHAT], GREEDY)
    assert (completion.text, completion.finish_reason) == (text, chunks[-1].finish_reason)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_chat_template_is_the_family_s_and_token_counts_follow_it(arch_settings, tiny_dirs, architecture):
    tokenizer = load_tokenizer(tiny_dirs[architecture])
    assert tokenizer.chat_template == FAMILIES[architecture].template
    counts = count_chat_tokens(arch_settings, architecture, [*CHAT, {"role": "assistant", "content": "Paris."}])
    assert 0 < counts["trained"] == counts["assistant"] < counts["total"]
    # Tool definitions, calls and results render through the fallback format, and stay trained.
    with_tools = count_chat_tokens(arch_settings, architecture, TOOL_CHAT, TOOLS)
    assert with_tools["trained"] > counts["trained"]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_chat_with_tools_answers_through_the_fallback_format(engine, architecture):
    ref = ModelRef(name=architecture, base_model=architecture)
    chunks = list(engine.stream_chat(ref, TOOL_CHAT[:3], ChatParams(temperature=0, max_tokens=8, tools=TOOLS)))
    assert chunks[-1].finish_reason in ("stop", "length", "tool_calls")


def _unknown_model(tiny_dirs, root: Path) -> Path:
    """A tiny OLMo-2 (an architecture no fast path knows) with the tiny Llama's tokenizer."""
    from transformers import Olmo2Config

    target = root / "olmo2"
    shutil.copytree(tiny_dirs["llama"], target)
    config = json.loads((target / "config.json").read_text())
    keep = (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "bos_token_id",
    )
    keep += ("eos_token_id", "pad_token_id", "tie_word_embeddings")
    olmo = Olmo2Config(**{key: config[key] for key in keep}, num_key_value_heads=2, max_position_embeddings=1024)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(olmo).save_pretrained(target)
    return target


def _windowed_mistral(tiny_dirs, root: Path) -> Path:
    """The tiny Mistral with a 16-token sliding window, which the fast paths do not compute."""
    target = root / "mistral-window"
    shutil.copytree(tiny_dirs["mistral"], target)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "sliding_window": 16}))
    return target


def test_an_unknown_or_unsupported_architecture_falls_back_to_the_general_path(tiny_dirs, tmp_path):
    models = {"olmo2": _unknown_model(tiny_dirs, tmp_path), "windowed": _windowed_mistral(tiny_dirs, tmp_path)}
    settings = make_settings(tmp_path / "data", local_models=models)
    listed = {m.name: m for m in list_base_models(settings)}
    assert (listed["olmo2"].architecture, listed["olmo2"].fast_chat, listed["olmo2"].fast_training) == (
        "olmo2",
        False,
        False,
    )
    assert (listed["windowed"].architecture, listed["windowed"].fast_chat) == ("mistral", False)
    with ChatEngine(settings) as engine:
        for name, path in models.items():
            ref = ModelRef(name=name, base_model=name)
            chunks = list(engine.stream_chat(ref, CHAT, ChatParams(temperature=0, max_tokens=24)))
            assert engine.get_model(ref).decoder is None
            tokenizer = load_tokenizer(path)
            prompt = tokenizer(tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True))
            hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
            with torch.inference_mode():
                expected = hf.generate(
                    torch.tensor([prompt["input_ids"]]), max_new_tokens=24, do_sample=False, pad_token_id=0
                )[0, len(prompt["input_ids"]) :]
            eos = engine.get_model(ref).eos_ids
            expected_text = tokenizer.decode([t for t in expected.tolist() if t not in eos], skip_special_tokens=True)
            # stream_chat drops a dangling partial character at the end of a reply
            assert "".join(chunk.text for chunk in chunks) == expected_text.rstrip("\ufffd")
    losses = _losses(_job(settings, tmp_path / "job", "olmo2"))
    assert losses[-1] < losses[0]


def test_the_model_list_says_which_paths_serve_each_base_model(arch_settings):
    listed = {m.name: m for m in list_base_models(arch_settings)}
    assert (listed["qwen3"].architecture, listed["qwen3"].fast_chat, listed["qwen3"].fast_training) == (
        "qwen3",
        True,
        True,
    )
    assert (listed["phi3"].fast_chat, listed["phi3"].fast_training) == (False, True)
    assert (listed["gemma3"].architecture, listed["gemma3"].fast_chat, listed["gemma3"].fast_training) == (
        "gemma3_text",
        False,
        False,
    )
    assert (listed["SmolLM2-135M-Instruct"].architecture, listed["SmolLM2-135M-Instruct"].fast_chat) == ("llama", True)
