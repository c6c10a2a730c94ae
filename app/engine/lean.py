"""A lean decoder for Llama-shaped models: fused weights prepared once, a preallocated KV cache, plain torch ops.

Why: decoding one token of a 135M model through 30 layers of Hugging Face modules is mostly Python and module
overhead, not arithmetic. This path runs the same maths (RMSNorm, rotary embeddings, grouped-query attention,
SwiGLU) as a tight loop of torch calls over fused QKV and gate/up weights, optionally with int8 weights.
Models of other shapes keep the Hugging Face forward (see `supports`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_ARCHITECTURES = ("llama",)  # model_type values whose maths this module reproduces exactly
_INITIAL_CACHE = 256  # positions allocated beyond the prompt; the cache doubles when a reply runs past it


def supports(model) -> bool:
    """Whether the model is a plain Llama (no biases, SiLU MLP) that the lean path computes exactly."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in _ARCHITECTURES:
        return False
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return False
    if getattr(config, "hidden_act", "silu") != "silu" or getattr(config, "pretraining_tp", 1) != 1:
        return False
    inner = getattr(model, "model", None)
    return inner is not None and hasattr(inner, "rotary_emb") and hasattr(inner, "layers")


class _Int8Linear:
    """y = x @ W.T with W as per-channel symmetric int8 (fbgemm), activations quantized per call."""

    def __init__(self, weight: torch.Tensor):
        from app.engine._hf import quiet

        weight = weight.detach().float().contiguous()
        scales = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        zeros = torch.zeros(weight.shape[0], dtype=torch.long)
        with quiet():  # torch marks its quantized tensor API as deprecated; fbgemm's kernels are still its fastest
            quantized = torch.quantize_per_channel(weight, scales, zeros, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(quantized, None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range=True as torch's dynamic quantized Linear does on x86 (avoids int16 accumulation overflow).
        return torch.ops.quantized.linear_dynamic(x, self.packed, True)


class _WeightInt8Linear:
    """y = x @ W.T with W as per-channel int8 and bf16 activations (weight-only: activation outliers survive)."""

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
        self.weight = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8).contiguous()
        self.scales = scales.to(torch.bfloat16)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch._weight_int8pack_mm(x.to(torch.bfloat16), self.weight, self.scales).float()


class _Int4Linear:
    """y = x @ W.T with W as 4-bit groups of 32 (asymmetric), bf16 activations."""

    GROUP = 32

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach().float()
        n, k = weight.shape
        groups = weight.reshape(n, k // self.GROUP, self.GROUP)
        low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)
        scale = (high - low).clamp(min=1e-8) / 15
        q = torch.round((groups - low) / scale).clamp(0, 15).to(torch.int32).reshape(n, k)
        zero = low + scale * 8
        self.scales = torch.cat([scale, zero], -1).reshape(n, k // self.GROUP, 2).transpose(0, 1).contiguous()
        self.scales = self.scales.to(torch.bfloat16)
        self.weight = torch._convert_weight_to_int4pack_for_cpu(q, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self.weight, self.GROUP, self.scales).float()


class _BFloat16Linear:
    def __init__(self, weight: torch.Tensor):
        self.weight = weight.detach().to(torch.bfloat16).contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.bfloat16), self.weight).float()


class _Float32Linear:
    def __init__(self, weight: torch.Tensor):
        self.weight = weight.detach().float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


_KINDS = {"fp32": _Float32Linear, "bf16": _BFloat16Linear, "int8": _Int8Linear, "w8": _WeightInt8Linear,
          "w4": _Int4Linear}


@dataclass
class _Layer:
    norm1: torch.Tensor
    qkv: object
    out: object
    norm2: torch.Tensor
    gate_up: object
    down: object


class KVCache:
    """Keys and values of every layer, [layers, kv_heads, capacity, head_dim], filled up to `length`."""

    def __init__(self, n_layers: int, n_kv: int, head_dim: int, capacity: int):
        self.keys = torch.zeros(n_layers, n_kv, capacity, head_dim)
        self.values = torch.zeros(n_layers, n_kv, capacity, head_dim)
        self.length = 0

    def reserve(self, needed: int, limit: int) -> None:
        """Grow (doubling, up to limit) so that `needed` positions fit."""
        capacity = self.keys.shape[2]
        if needed <= capacity:
            return
        new = min(max(needed, 2 * capacity), max(limit, needed))
        pad = (0, 0, 0, new - capacity)
        self.keys, self.values = F.pad(self.keys, pad), F.pad(self.values, pad)


class LeanLlama:
    """Forward passes of a (merged) Llama model over a KVCache; returns the logits of the last position."""

    def __init__(self, model, weights: str = "fp32"):
        config = model.config
        inner = model.model
        make = _KINDS[weights]
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_heads
        self.intermediate = config.intermediate_size
        self.max_positions = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        self.eps = float(config.rms_norm_eps)
        self.layers = []
        with torch.no_grad():
            for layer in inner.layers:
                attn, mlp = layer.self_attn, layer.mlp
                qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
                gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
                self.layers.append(_Layer(
                    layer.input_layernorm.weight.detach().float().clone(), make(qkv), make(attn.o_proj.weight),
                    layer.post_attention_layernorm.weight.detach().float().clone(), make(gate_up),
                    make(mlp.down_proj.weight),
                ))
            self.embed = inner.embed_tokens.weight.detach().float().clone()
            self.norm = inner.norm.weight.detach().float().clone()
            self.head = make(model.get_output_embeddings().weight)
            # The model's own rotary module gives cos/sin for every position (any rope scaling it implements).
            positions = torch.arange(self.max_positions)[None]
            cos, sin = inner.rotary_emb(self.embed[:1][None], positions)
            self.cos, self.sin = cos[0].float().contiguous(), sin[0].float().contiguous()

    def new_cache(self, expected: int) -> KVCache:
        """An empty cache sized for `expected` positions (it grows if a reply runs longer)."""
        capacity = min(self.max_positions, expected + _INITIAL_CACHE)
        return KVCache(len(self.layers), self.n_kv, self.head_dim, capacity)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = self.head_dim // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(self, token_ids: list[int], cache: KVCache) -> torch.Tensor:
        """Run token_ids after what the cache holds (a whole prompt, or one token); logits of the last one."""
        start, n = cache.length, len(token_ids)
        if start and n > 1:
            raise ValueError("the lean path extends a filled cache one token at a time")
        cache.reserve(start + n, self.max_positions)
        end = start + n
        heads, kv, dim = self.n_heads, self.n_kv, self.head_dim
        x = self.embed[torch.tensor(token_ids)]  # [n, hidden]
        cos, sin = self.cos[start:end][:, None], self.sin[start:end][:, None]  # [n, 1, dim]
        q_width, kv_width = heads * dim, kv * dim
        for index, layer in enumerate(self.layers):
            h = F.rms_norm(x, (x.shape[-1],), layer.norm1, self.eps)
            qkv = layer.qkv(h)
            qk = self._rope(qkv[:, : q_width + kv_width].view(n, heads + kv, dim), cos, sin)
            q = qk[:, :heads].transpose(0, 1)  # [heads, n, dim]
            cache.keys[index, :, start:end] = qk[:, heads:].transpose(0, 1)
            cache.values[index, :, start:end] = qkv[:, q_width + kv_width :].view(n, kv, dim).transpose(0, 1)
            keys, values = cache.keys[index, :, :end], cache.values[index, :, :end]
            # One new token sees every cached position, so it needs no mask; a prompt from 0 is plain causal.
            attended = F.scaled_dot_product_attention(q, keys, values, is_causal=n > 1, enable_gqa=heads != kv)
            x = x + layer.out(attended.transpose(0, 1).reshape(n, q_width))
            h = F.rms_norm(x, (x.shape[-1],), layer.norm2, self.eps)
            gate_up = layer.gate_up(h)
            x = x + layer.down(F.silu(gate_up[:, : self.intermediate]) * gate_up[:, self.intermediate :])
        cache.length = end
        last = F.rms_norm(x[-1:], (x.shape[-1],), self.norm, self.eps)
        return self.head(last)[0]
