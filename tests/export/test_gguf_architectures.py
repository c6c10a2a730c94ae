"""GGUF export of the other architectures the engine can serve (Qwen2, Mistral), read back by transformers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine._hf import quiet
from app.engine.export import export_gguf
from app.engine.export_modelfile import modelfile

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def _tiny(kind: str, tiny_model: Path, directory: Path) -> Path:
    import torch
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_class, model_class = {
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM),
    }[kind]
    config = config_class(
        vocab_size=400,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=kind == "qwen2",
    )
    torch.manual_seed(3)
    model = model_class(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.1)  # Qwen2's q/k/v biases start at zero: make them count
    model.save_pretrained(directory)
    for name in TOKENIZER_FILES:
        if (tiny_model / name).exists():
            shutil.copy2(tiny_model / name, directory / name)
    return directory


@pytest.mark.parametrize("kind", ["qwen2", "mistral"])
def test_a_qwen2_or_mistral_gguf_reads_back_with_the_same_logits(kind, tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    source = _tiny(kind, tiny_model, tmp_path / f"tiny-{kind}")
    path = export_gguf(source, tmp_path / f"{kind}.gguf")
    ids = torch.tensor([[5, 17, 42, 99, 7, 3, 250, 12]])
    with quiet(), torch.no_grad():
        original = AutoModelForCausalLM.from_pretrained(source).eval()
        read_back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name).eval()
        assert read_back.config.model_type == {"qwen2": "qwen2", "mistral": "llama"}[kind]  # llama.cpp's view
        assert torch.allclose(original(ids).logits, read_back(ids).logits, atol=2e-3)


LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
OTHER = "{% for message in messages %}[{{ message['role'] }}] {{ message['content'] }}</s>{% endfor %}[assistant] "


def _model_dir(tmp_path: Path, template: str, bos: str, eos: str) -> Path:
    (tmp_path / "chat_template.jinja").write_text(template)
    (tmp_path / "tokenizer_config.json").write_text(f'{{"bos_token": "{bos}", "eos_token": "{eos}"}}')
    return tmp_path


def test_a_llama3_template_becomes_ollamas_llama3_template_with_its_bos(tmp_path):
    text = modelfile("m.gguf", _model_dir(tmp_path, LLAMA3, "<|begin_of_text|>", "<|eot_id|>"))
    assert text.startswith("FROM ./m.gguf\n")
    assert 'TEMPLATE """<|begin_of_text|>{{- range .Messages }}<|start_header_id|>{{ .Role }}' in text
    assert 'PARAMETER stop "<|eot_id|>"' in text and "SYSTEM" not in text


def test_a_template_of_another_style_gets_the_minimal_modelfile_with_its_stop_tokens(tmp_path):
    text = modelfile("m.gguf", _model_dir(tmp_path, OTHER, "<s>", "</s>"))
    assert "TEMPLATE" not in text
    assert "# Ollama uses the chat template stored in the GGUF file." in text
    assert text.endswith('PARAMETER stop "</s>"\n')


def test_without_the_base_model_on_disk_the_modelfile_is_minimal():
    assert modelfile("m.gguf", None) == "FROM ./m.gguf\n# Ollama uses the chat template stored in the GGUF file.\n"
