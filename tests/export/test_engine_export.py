"""The engine's exports of a tiny tuned model: the adapter, the merged directory and GGUF files, read back by peft,
transformers and transformers' GGUF loader, answer as Tuneboard's own chat does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.engine._hf import quiet
from app.engine.chat_types import ModelRef
from app.engine.export import export_adapter, export_gguf, export_merged
from app.errors import Invalid
from tests.export.conftest import PROMPTS, TINY, greedy_chat, greedy_hf


@pytest.fixture(scope="module")
def merged(tiny_model: Path, tiny_adapter: Path, tmp_path_factory) -> Path:
    """The tiny model with the adapter merged."""
    return export_merged(tiny_model, tiny_adapter, tmp_path_factory.mktemp("export") / "merged")


@pytest.fixture(scope="module")
def ggufs(merged: Path) -> dict[str, Path]:
    """The merged tiny model as GGUF, f16 and q8_0."""
    return {quant: export_gguf(merged, merged.parent / f"tiny-{quant}.gguf", quant) for quant in ("f16", "q8_0")}


def test_the_exported_adapter_loads_in_peft_and_gives_the_same_logits(tiny_model, tiny_adapter, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = export_adapter(tiny_adapter, tmp_path / "adapter", base_model=TINY)
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == TINY
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    logits = {}
    for name, adapter in (("ours", tiny_adapter), ("exported", out)):
        base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
        with torch.no_grad(), quiet():
            logits[name] = PeftModel.from_pretrained(base, str(adapter)).eval()(ids).logits
    with torch.no_grad():
        plain = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)(ids).logits
    assert torch.equal(logits["ours"], logits["exported"])
    assert not torch.allclose(plain, logits["exported"], atol=1e-3)  # the adapter does change the model


def test_the_merged_directory_loads_in_transformers_and_answers_as_tuneboard_chat(merged, tiny_adapter, exact_chat):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {p.name for p in merged.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= names
    model = AutoModelForCausalLM.from_pretrained(merged).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert tokenizer.chat_template
    ours = greedy_chat(exact_chat, ModelRef("tuned", TINY, adapter_path=tiny_adapter), PROMPTS)
    assert greedy_hf(model, tokenizer, PROMPTS) == ours
    assert any(ours)


@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_the_gguf_read_back_by_transformers_answers_as_tuneboard_chat(ggufs, quant, tiny_adapter, exact_chat):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ggufs[quant]
    with quiet():
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    ours = greedy_chat(exact_chat, ModelRef("tuned", TINY, adapter_path=tiny_adapter), PROMPTS)
    assert greedy_hf(model, tokenizer, PROMPTS) == ours


def test_the_gguf_keeps_tokenizer_weights_and_shape(ggufs, merged):
    import gguf
    import numpy as np
    import torch
    from safetensors.torch import load_file

    reader = gguf.GGUFReader(str(ggufs["f16"]))
    fields = reader.fields
    assert fields["general.architecture"].contents() == "llama"
    assert fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    assert "<|im_start|>" in fields["tokenizer.chat_template"].contents()
    assert fields["tokenizer.ggml.add_bos_token"].contents() is False
    tensors = {t.name: t for t in reader.tensors}
    assert "output.weight" not in tensors  # tied to the embedding
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    assert tensors["blk.0.ffn_up.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    embed = load_file(str(merged / "model.safetensors"))["model.embed_tokens.weight"]
    stored = torch.from_numpy(np.array(tensors["token_embd.weight"].data, dtype=np.float32))
    assert torch.allclose(stored, embed, atol=1e-3)
    q8 = {t.name: t for t in gguf.GGUFReader(str(ggufs["q8_0"])).tensors}
    assert q8["blk.0.ffn_up.weight"].tensor_type == gguf.GGMLQuantizationType.Q8_0
    assert ggufs["q8_0"].stat().st_size < ggufs["f16"].stat().st_size


def test_an_architecture_gguf_export_does_not_cover_is_refused_in_plain_words(merged, tmp_path):
    other = tmp_path / "phi"
    shutil.copytree(merged, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "phi3"}))
    with pytest.raises(Invalid, match="Llama, Mistral and Qwen2 models; this model is a phi3"):
        export_gguf(other, tmp_path / "phi.gguf")
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".*part"))


def test_an_unknown_quantization_is_refused(merged, tmp_path):
    with pytest.raises(Invalid, match="f16 or q8_0"):
        export_gguf(merged, tmp_path / "x.gguf", quant="q4_k")
