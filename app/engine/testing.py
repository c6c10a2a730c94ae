"""A tiny random Llama with a real tokenizer and a ChatML template, built offline in about a second, for tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

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


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(directory: Path, *, seed: int = 0) -> Path:
    """Build (or reuse) a tiny random LlamaForCausalLM + tokenizer + chat template as an HF directory."""
    directory = Path(directory)
    if (directory / _MARKER).exists():
        return directory
    _hf.prepare()
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = _build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
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
