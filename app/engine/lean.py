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
    """y = x @ W.T with W as 4-bit groups of 32 (asymmetric min/max), bf16 activations."""

    GROUP = 32

    def __init__(self, weight: torch.Tensor):
        weight = weight.detach().float()
        n, k = weight.shape
        groups = weight.reshape(n, k // self.GROUP, self.GROUP)
        low, high = groups.amin(-1, keepdim=True), groups.amax(-1, keepdim=True)
        scale = (high - low).clamp(min=1e-8) / 15
        q = torch.round((groups - low) / scale).clamp(0, 15).to(torch.int32).reshape(n, k)
        zero = low + scale * 8  # the kernel computes (q - 8) * scale + zero
        scales = torch.cat([scale, zero], -1).reshape(n, k // self.GROUP, 2).transpose(0, 1).contiguous()
        self.scales = scales.to(torch.bfloat16)
        self.weight = torch._convert_weight_to_int4pack_for_cpu(q, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch._weight_int4pack_mm_for_cpu(x.to(torch.bfloat16), self.weight, self.GROUP, self.scales).float()


class _WithLoRA:
    """A quantized base linear plus an exact float32 low-rank delta: rounding a merged weight to 4 bits would erase
    the small LoRA update (it is far below one quantization step), so the adapter is applied unmerged."""

    def __init__(self, base, down: torch.Tensor, up: torch.Tensor):
        self.base, self.down, self.up = base, down.contiguous(), up.contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.down), self.up)


def lora_pairs(modules, scaling_key: str = "default"):
    """(A, B*scaling) stacked for fused projections: A is [sum r, in], B block-diagonal [sum out, sum r]."""
    downs = [m.lora_A[scaling_key].weight.detach().float() for m in modules]
    ups = [m.lora_B[scaling_key].weight.detach().float() * m.scaling[scaling_key] for m in modules]
    return torch.cat(downs), torch.block_diag(*ups)


class _Float32Linear:
    def __init__(self, weight: torch.Tensor):
        self.weight = weight.detach().float().contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


_KINDS = {"fp32": _Float32Linear, "w8": _WeightInt8Linear, "w4": _Int4Linear}
_ROLES = ("qkv", "out", "gate_up", "down", "head")
# Measured on SmolLM2-135M (bench/README.md): 4-bit decoder weights cost little (the residual stream and
# norms stay float32), but the LM head picks the token and needs 8 bits to keep the float32 greedy choices.
QUANTIZED = {"qkv": "w4", "out": "w4", "gate_up": "w4", "down": "w4", "head": "w8"}


def _make(kind: str, weight: torch.Tensor):
    """The fastest-to-build linear of that kind, falling back to float32 where a kernel refuses the shape."""
    if kind == "w4" and weight.shape[1] % _Int4Linear.GROUP:
        kind = "w8"
    try:
        return _KINDS[kind](weight)
    except RuntimeError:  # a kernel missing on this CPU build, or an odd shape: exact and slower beats failing
        return _Float32Linear(weight)


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
    """Forward passes of a (merged) Llama model over a KVCache; returns the logits of the last position.

    weights: "fp32" (the reference maths, equal to the HF forward within float rounding), "w8", "w4", or a dict
    role -> kind over QUANTIZED's roles.
    """

    def __init__(self, model, weights: str | dict = "fp32"):
        config = model.config
        inner = model.model
        kinds = dict.fromkeys(_ROLES, weights) if isinstance(weights, str) else {**QUANTIZED, **weights}
        make = {role: (lambda w, kind=kind: _make(kind, w)) for role, kind in kinds.items()}
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_heads
        self.intermediate = config.intermediate_size
        self.max_positions = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        self.eps = float(config.rms_norm_eps)
        self.scale = self.head_dim**-0.5
        self.layers = []
        with torch.no_grad():
            for layer in inner.layers:
                attn, mlp = layer.self_attn, layer.mlp
                groups = {"qkv": [attn.q_proj, attn.k_proj, attn.v_proj], "out": [attn.o_proj],
                          "gate_up": [mlp.gate_proj, mlp.up_proj], "down": [mlp.down_proj]}
                built = {}
                for role, modules in groups.items():
                    built[role] = make[role](torch.cat([m.weight for m in modules]))
                    if all(hasattr(m, "lora_A") for m in modules):  # an unmerged PEFT adapter
                        built[role] = _WithLoRA(built[role], *lora_pairs(modules))
                self.layers.append(_Layer(
                    layer.input_layernorm.weight.detach().float().clone(), built["qkv"], built["out"],
                    layer.post_attention_layernorm.weight.detach().float().clone(), built["gate_up"], built["down"],
                ))
            self.embed = inner.embed_tokens.weight.detach().float().clone()
            self.norm = inner.norm.weight.detach().float().clone()
            self.head = make["head"](model.get_output_embeddings().weight)
            self.rotary = inner.rotary_emb
            self.cos = self.sin = torch.zeros(0, self.head_dim)
            self._rope_tables(_INITIAL_CACHE)

    def _rope_tables(self, needed: int) -> None:
        """cos/sin for positions [0, needed), from the model's own rotary module (any rope scaling it has)."""
        if needed <= self.cos.shape[0]:
            return
        # Grown by doubling: a 128k-context model should not hold a 128k table for a short chat.
        count = min(self.max_positions, max(needed, 2 * self.cos.shape[0]))
        with torch.no_grad():
            cos, sin = self.rotary(self.embed[:1][None], torch.arange(count)[None])
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
        self._rope_tables(end)
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
            if n == 1:
                # One new token sees every cached position: no mask. Grouping the query heads by their shared
                # KV head makes this two small bmm calls (SDPA with enable_gqa takes a slow generic path on CPU).
                grouped = q.reshape(kv, heads // kv, dim)
                scores = torch.bmm(grouped, keys.transpose(1, 2)).mul_(self.scale)
                attended = torch.bmm(torch.softmax(scores, dim=-1), values).reshape(1, q_width)
            else:  # a prompt from position 0: plain causal attention on the fused kernel
                group = heads // kv
                keys, values = keys.repeat_interleave(group, 0), values.repeat_interleave(group, 0)
                attended = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
                attended = attended.transpose(0, 1).reshape(n, q_width)
            x = x + layer.out(attended)
            h = F.rms_norm(x, (x.shape[-1],), layer.norm2, self.eps)
            gate_up = layer.gate_up(h)
            x = x + layer.down(F.silu(gate_up[:, : self.intermediate]) * gate_up[:, self.intermediate :])
        cache.length = end
        last = F.rms_norm(x[-1:], (x.shape[-1],), self.norm, self.eps)
        return self.head(last)[0]
