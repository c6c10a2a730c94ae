"""Write a Hugging Face directory (Llama, Mistral or Qwen2 with a byte-level BPE tokenizer) as one GGUF file.

llama.cpp, Ollama and transformers' GGUF loader read what this writes: the weights in f16 (or q8_0), the model's
shape, the tokenizer (tokens, types, merges, special ids, its pre-tokenizer's name) and the chat template. Tensors
stream from the safetensors to the file one at a time, so the file is never whole in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from app.engine.export_modelfile import chat_template, special_token
from app.errors import Invalid

QUANTS = ("f16", "q8_0")
# model_type -> (llama.cpp architecture, are q/k rows permuted into GGUF's rope layout). llama.cpp reads Mistral as
# Llama (sliding-window attention aside, which only matters past 4k tokens).
ARCHITECTURES = {"llama": ("llama", True), "mistral": ("llama", True), "qwen2": ("qwen2", False)}
_FILE_TYPES = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_SPLITS = {_LLAMA3_SPLIT: "llama-bpe", _QWEN2_SPLIT: "qwen2"}


@dataclass(frozen=True)
class Vocab:
    """The tokenizer as GGUF stores it."""

    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    special: dict[str, int]  # bos / eos / unk / pad -> id, those the tokenizer has
    chat_template: str | None


def write_gguf(model_dir: Path, out_file: Path, quant: str = "f16") -> Path:
    """Write model_dir as a GGUF file at out_file (beside it, then renamed: a reader never sees half of one)."""
    if quant not in QUANTS:
        raise Invalid(f"GGUF export writes f16 or q8_0, not {quant!r}.", param="quant")
    config = json.loads((model_dir / "config.json").read_text())
    model_type = config.get("model_type", "")
    if model_type not in ARCHITECTURES:
        raise Invalid(
            f"GGUF export covers Llama, Mistral and Qwen2 models; this model is a {model_type or 'model of no type'}. "
            "Download the merged directory and convert it with llama.cpp's convert_hf_to_gguf.py.",
            code="export_unsupported",
        )
    _check_rope(config)
    arch_name, permute = ARCHITECTURES[model_type]
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch_name)
    vocab = read_vocab(model_dir, int(config["vocab_size"]))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{out_file.name}.", suffix=".part", dir=out_file.parent)
    os.close(handle)
    tmp = Path(staging)
    try:
        writer = gguf.GGUFWriter(tmp, arch_name)
        _write_metadata(writer, config, vocab, quant, name=_name(model_dir, config))
        plan = list(_tensor_plan(model_dir, config, arch, quant))
        for name, shape, qtype, nbytes, _ in plan:
            writer.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=qtype)
        writer.write_header_to_file(tmp)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, _, qtype, _, load in plan:
            writer.write_tensor_data(_convert(name, load(), qtype, config, permute))
        writer.close()
        tmp.rename(out_file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_file


def _check_rope(config: dict[str, Any]) -> None:
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    kind = rope.get("rope_type") or rope.get("type") or "default"
    if kind != "default":
        raise Invalid(
            f"GGUF export does not yet write {kind!r} rope scaling; download the merged directory and convert it "
            "with llama.cpp's convert_hf_to_gguf.py.",
            code="export_unsupported",
        )


def _name(model_dir: Path, config: dict[str, Any]) -> str:
    return str(config.get("_model_name_or_path") or model_dir.name)


def _write_metadata(writer: gguf.GGUFWriter, config: dict[str, Any], vocab: Vocab, quant: str, name: str) -> None:
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    rope = config.get("rope_parameters") or {}
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    writer.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_rope_dimension_count(int(config.get("head_dim") or hidden // heads))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(_FILE_TYPES[quant])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    adders = {
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
    }
    for role, token_id in vocab.special.items():
        adders[role](token_id)
    # Tuneboard renders the chat template and tokenizes it without adding a BOS: the template writes its own.
    writer.add_add_bos_token(False)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)


def read_vocab(model_dir: Path, vocab_size: int) -> Vocab:
    """The tokenizer of model_dir as GGUF stores it; Invalid for tokenizers GGUF export does not cover."""
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE" or not _byte_level(tokenizer):
        raise Invalid(
            "GGUF export covers byte-level BPE tokenizers (SmolLM2, Llama 3, Qwen2); this model's tokenizer is "
            f"{model.get('type', 'unknown')}. Download the merged directory and convert it with llama.cpp.",
            code="export_unsupported",
        )
    by_id = {index: token for token, index in model["vocab"].items()}
    types = dict.fromkeys(by_id, gguf.TokenType.NORMAL)
    for added in tokenizer.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        types[added["id"]] = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
    size = max(vocab_size, max(by_id) + 1)
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(size)]
    token_types = [int(types.get(i, gguf.TokenType.UNUSED)) for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    ids = {token: index for index, token in enumerate(tokens)}
    special = {}
    for role in ("bos", "eos", "unk", "pad"):
        token = special_token(model_dir, role)
        if token is not None and token in ids:
            special[role] = ids[token]
    return Vocab(_pre_tokenizer(tokenizer), tokens, token_types, merges, special, chat_template(model_dir))


def _byte_level(tokenizer: dict[str, Any]) -> bool:
    return "ByteLevel" in json.dumps(tokenizer.get("pre_tokenizer")) and "ByteLevel" in json.dumps(
        tokenizer.get("decoder")
    )


def _pre_tokenizer(tokenizer: dict[str, Any]) -> str:
    """llama.cpp's name for how this tokenizer splits text before its merges (it picks its regex by name)."""
    pre = tokenizer.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds[:1] == ["Split"] and kinds[-1] == "ByteLevel":
        pattern = steps[0].get("pattern", {}).get("Regex")
        if pattern in _SPLITS:
            return _SPLITS[pattern]
    raise Invalid(
        "GGUF export does not know this tokenizer's pre-tokenizer, so llama.cpp could split text differently. "
        "Download the merged directory and convert it with llama.cpp's convert_hf_to_gguf.py.",
        code="export_unsupported",
    )


def _tensor_plan(model_dir: Path, config: dict[str, Any], arch: gguf.MODEL_ARCH, quant: str) -> Iterator[tuple]:
    """(GGUF name, shape, type, bytes, loader) of each tensor, in file order."""
    from safetensors import safe_open

    names = gguf.TensorNameMap(arch, int(config["num_hidden_layers"]))
    tied = bool(config.get("tie_word_embeddings", False))
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="np") as handle:
            keys = list(handle.keys())
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in keys}
        for key in keys:
            if key == "lm_head.weight" and tied:
                continue  # the embedding doubles as the head; llama.cpp reads its absence as tied
            name = names.get_name(key, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise Invalid(f"GGUF export does not know where the tensor {key!r} goes.", code="export_unsupported")
            shape = shapes[key]
            qtype = _tensor_type(shape, quant)
            nbytes = _nbytes(shape, qtype)
            yield name, shape, qtype, nbytes, _loader(path, key)


def _loader(path: Path, key: str):
    def load() -> np.ndarray:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            # torch reads bf16, which numpy cannot; float32 is exact for every source dtype.
            return handle.get_tensor(key).float().numpy()

    return load


def _tensor_type(shape: tuple[int, ...], quant: str) -> gguf.GGMLQuantizationType:
    """Norms and biases stay f32 (llama.cpp's rule); matrices are f16, or q8_0 where rows fill whole blocks."""
    if len(shape) < 2:
        return gguf.GGMLQuantizationType.F32
    block, _ = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0]
    if quant == "q8_0" and shape[-1] % block == 0:
        return gguf.GGMLQuantizationType.Q8_0
    return gguf.GGMLQuantizationType.F16


def _nbytes(shape: tuple[int, ...], qtype: gguf.GGMLQuantizationType) -> int:
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return rows * (shape[-1] // block) * type_size


def _convert(
    name: str, weights: np.ndarray, qtype: gguf.GGMLQuantizationType, config: dict[str, Any], permute: bool
) -> np.ndarray:
    if permute and name.endswith(("attn_q.weight", "attn_k.weight")):
        heads = int(config["num_attention_heads"])
        if name.endswith("attn_k.weight"):
            heads = int(config.get("num_key_value_heads") or heads)
        weights = rope_permute(weights, heads)
    return gguf.quants.quantize(np.ascontiguousarray(weights), qtype)


def rope_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """Reorder each head's q/k rows from Hugging Face's rotate-half layout to GGUF's interleaved pairs.

    HF rotates row i with row i + d/2 of a head; llama.cpp rotates neighbouring rows 2i and 2i+1. So row j of the
    first half goes to 2j and row j of the second half to 2j + 1 (transformers' loader undoes this on read).
    """
    rows = weights.shape[0]
    half = rows // heads // 2
    return weights.reshape(heads, 2, half, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)
