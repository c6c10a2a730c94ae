"""Tiny random models with a real tokenizer and their family's chat template, built offline in about a second, for
tests: Llama (ChatML, as SmolLM2), Qwen2/Qwen3 (ChatML), Gemma 2/3 (<start_of_turn>), Mistral ([INST]) and Phi-3
(<|user|>)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine import _hf

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# A few sentences so the byte-level BPE learns some merges; bytes themselves are always in the alphabet.
_CORPUS = [
    "You are a helpful assistant.",
    "What is the capital of France? The capital of France is Paris.",
    "Tell me a joke about cats. Why did the cat sit on the computer? To keep an eye on the mouse.",
    '{"answer": "yes", "confidence": 0.9} {"answer": "no"}',
    "user assistant system hello world the quick brown fox jumps over the lazy dog 0123456789",
    "Héllo wörld, ça va? 日本語 のテキスト 😀",
]
_MARKER = "tiny-model.ok"


@dataclass(frozen=True)
class _Family:
    """A chat family's template and special tokens; `stops` are end-of-turn tokens besides eos (generation_config)."""

    template: str
    special_tokens: list[str]
    bos: str | None
    eos: str
    pad: str
    unk: str
    stops: tuple[str, ...] = ()


# The system prompt is folded into the first user turn, as Gemma's and Mistral's own templates do.
_FOLD_SYSTEM = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] + '\n\n' -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}" + _FOLD_SYSTEM + "{%- for message in turns -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else 'user' -%}"
    "{{ '<start_of_turn>' + role + '\n' + (system if loop.first else '') + message['content'] + '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}" + _FOLD_SYSTEM + "{%- for message in turns -%}"
    "{%- if message['role'] == 'assistant' -%}{{ message['content'] + eos_token }}"
    "{%- else -%}{{ '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' }}{%- endif -%}"
    "{%- endfor -%}"
)
PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
_CHATML = _Family(CHAT_TEMPLATE, SPECIAL_TOKENS, "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|endoftext|>")
_QWEN = _Family(CHAT_TEMPLATE, SPECIAL_TOKENS, None, "<|im_end|>", "<|endoftext|>", "<|endoftext|>", ("<|endoftext|>",))
_GEMMA = _Family(
    GEMMA_TEMPLATE,
    ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
    "<bos>",
    "<eos>",
    "<pad>",
    "<unk>",
    ("<end_of_turn>",),
)
_MISTRAL = _Family(MISTRAL_TEMPLATE, ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"], "<s>", "</s>", "<unk>", "<unk>")
_PHI3 = _Family(
    PHI3_TEMPLATE,
    ["<unk>", "<s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
    "<s>",
    "<|endoftext|>",
    "<|endoftext|>",
    "<unk>",
    ("<|end|>",),
)
FAMILIES = {
    "llama": _CHATML,
    "qwen2": _QWEN,
    "qwen3": _QWEN,
    "gemma2": _GEMMA,
    "gemma3": _GEMMA,
    "mistral": _MISTRAL,
    "phi3": _PHI3,
}
ARCHITECTURES = tuple(FAMILIES)  # what build_tiny_model builds


def _build_tokenizer(family: _Family = _CHATML):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=family.special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=family.bos,
        eos_token=family.eos,
        pad_token=family.pad,
        unk_token=family.unk,
        chat_template=family.template,
    )


def _config(architecture: str, tokenizer) -> Any:
    """A tiny config of the architecture: 2 layers, 64 wide, 4 query heads over 2 KV heads, its family's tokens."""
    import transformers

    common: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if architecture == "llama":
        return transformers.LlamaConfig(**common, tie_word_embeddings=True)
    if architecture == "qwen2":  # q/k/v biases always; the window is off unless use_sliding_window
        return transformers.Qwen2Config(**common, tie_word_embeddings=True)
    if architecture == "qwen3":  # + per-head RMSNorm of queries and keys
        return transformers.Qwen3Config(**common, head_dim=16, tie_word_embeddings=True)
    if architecture == "mistral":  # as Mistral 7B v0.2+: no sliding window
        return transformers.MistralConfig(**common, head_dim=16, sliding_window=None)
    if architecture == "phi3":  # fused qkv_proj and gate_up_proj
        return transformers.Phi3Config(**common, sliding_window=None)
    # Gemma: scaled tied embeddings, GELU-tanh MLP, (1 + weight) norms; windows of 32 tokens so that short chats
    # cross them; Gemma 2 soft-caps attention scores and logits, Gemma 3 normalizes queries and keys.
    gemma = {**common, "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 32}
    if architecture == "gemma2":
        return transformers.Gemma2Config(**gemma)
    if architecture == "gemma3":
        layer_types = ["sliding_attention", "full_attention"]
        return transformers.Gemma3TextConfig(**gemma, layer_types=layer_types)
    raise ValueError(f"no tiny {architecture!r} model: one of {', '.join(ARCHITECTURES)}")


def build_tiny_model(directory: Path, architecture: str = "llama", *, seed: int = 0) -> Path:
    """Build (or reuse) a tiny random model of an architecture (ARCHITECTURES) + tokenizer + chat template."""
    directory = Path(directory)
    if (directory / _MARKER).exists():
        return directory
    family = FAMILIES.get(architecture)
    if family is None:
        raise ValueError(f"no tiny {architecture!r} model: one of {', '.join(ARCHITECTURES)}")
    _hf.prepare()
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    tokenizer = _build_tokenizer(family)
    config = _config(architecture, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    eos = [tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(list(family.stops))]
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos[0] if len(eos) == 1 else eos,
        pad_token_id=tokenizer.pad_token_id,
    )
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a parallel test never sees half a model.
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=directory.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / _MARKER).write_text("ok\n")
    try:
        tmp.rename(directory)
    except OSError:
        if not (directory / _MARKER).exists():
            shutil.rmtree(directory, ignore_errors=True)
            tmp.rename(directory)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return directory
