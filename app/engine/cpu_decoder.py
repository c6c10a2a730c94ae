"""The CPU chat decoder for Llama-shaped models (Llama, Mistral without a binding window, Qwen2's q/k/v biases, Qwen3's
q/k norms): fused weights prepared once, a preallocated KV cache, torch ops.

Why: decoding one token of a 135M model through 30 layers of Hugging Face modules is mostly Python and module
overhead, not arithmetic. This path runs the same maths (RMSNorm, rotary embeddings, grouped-query attention,
SwiGLU) as a tight loop of torch calls over fused QKV and gate/up weights, optionally with 4/8-bit weights
(quantized_weights.py). A decoded token costs about 30 torch calls a layer, each ~2 µs of overhead on this CPU beside
the 4-bit matmuls (~8 ms of a ~12 ms token on one core): the decode loop is written to keep that count low, and
with the compiled kernels (native.py) each stretch between two matmuls is a single C call (`_decode_native`).
Models of other shapes keep the Hugging Face forward (see `decoder_parts.supports` and architectures.py).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from app.engine.decoder_parts import Head, KVCache, NativeBuffers
from app.engine.quantized_weights import Linear, WithLoRA, lora_pairs, make

_INITIAL_CACHE = 256  # positions allocated beyond the prompt; the cache doubles when a reply runs past it
_ROLES = ("qkv", "out", "gate_up", "down", "head")
# Measured on SmolLM2-135M (bench/README.md): 4-bit decoder weights cost little (the residual stream and norms
# stay float32). The 4-bit head only ranks the vocabulary: its top candidates are rescored exactly (decoder_parts.Head).
QUANTIZED = {"qkv": "w4", "out": "w4", "gate_up": "w4", "down": "w4", "head": "w4"}


@dataclass
class _Layer:
    norm1: torch.Tensor
    qkv: Linear
    out: Linear
    norm2: torch.Tensor
    gate_up: Linear
    down: Linear
    qkv_bias: torch.Tensor | None = None  # Qwen2's, the query's part scaled as its weights are
    q_norm: torch.Tensor | None = None  # Qwen3's per-head RMSNorm weights (the query's carrying the attention scale)
    k_norm: torch.Tensor | None = None


class LlamaDecoder:
    """Forward passes of a (merged) Llama model over a KVCache; returns the logits of the last position.

    weights: "fp32" (the reference maths, equal to the HF forward within float rounding), "w8", "w4", or a dict
    role -> kind over QUANTIZED's roles. The attention scale is folded into the query weights at load.
    kernels: the compiled decode steps (native.load), used for single-token steps when given; None keeps torch ops.
    """

    def __init__(self, model, weights: str | dict = "fp32", kernels: ctypes.CDLL | None = None):
        config = model.config
        inner = model.model
        kinds = dict.fromkeys(_ROLES, weights) if isinstance(weights, str) else {**QUANTIZED, **weights}
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_heads
        self.hidden = config.hidden_size
        self.intermediate = config.intermediate_size
        self.max_positions = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        self.eps = float(config.rms_norm_eps)
        scale = self.head_dim**-0.5
        self.layers: list[_Layer] = []
        with torch.no_grad():
            for layer in inner.layers:
                attn, mlp = layer.self_attn, layer.mlp
                # RMSNorm undoes any scale before it: with q/k norms the attention scale goes into the query's norm.
                q_norm = getattr(attn, "q_norm", None)
                q_scale = 1.0 if q_norm is not None else scale
                groups = {
                    "qkv": ([attn.q_proj, attn.k_proj, attn.v_proj], [q_scale, 1.0, 1.0]),
                    "out": ([attn.o_proj], [1.0]),
                    "gate_up": ([mlp.gate_proj, mlp.up_proj], [1.0, 1.0]),
                    "down": ([mlp.down_proj], [1.0]),
                }
                built = {}
                for role, (modules, row_scales) in groups.items():
                    fused = torch.cat(
                        [m.weight.detach().float() * s for m, s in zip(modules, row_scales, strict=False)]
                    )
                    built[role] = make(kinds[role], fused)
                    if all(hasattr(m, "lora_A") for m in modules):  # an unmerged PEFT adapter
                        built[role] = WithLoRA(built[role], *lora_pairs(modules, row_scales))
                self.layers.append(
                    _Layer(
                        layer.input_layernorm.weight.detach().float().clone(),
                        built["qkv"],
                        built["out"],
                        layer.post_attention_layernorm.weight.detach().float().clone(),
                        built["gate_up"],
                        built["down"],
                    )
                )
                if attn.q_proj.bias is not None:
                    biases = (attn.q_proj.bias * q_scale, attn.k_proj.bias, attn.v_proj.bias)
                    self.layers[-1].qkv_bias = torch.cat([b.detach().float() for b in biases])
                if q_norm is not None:
                    self.layers[-1].q_norm = q_norm.weight.detach().float() * scale
                    self.layers[-1].k_norm = attn.k_norm.weight.detach().float().clone()
            self.embed = inner.embed_tokens.weight.detach().float().clone()
            self.norm = inner.norm.weight.detach().float().clone()
            head = model.get_output_embeddings().weight
            tied = head.data_ptr() == inner.embed_tokens.weight.data_ptr()
            self.head = Head(kinds["head"], head, self.embed if tied else head.detach().float().clone())
            self.rotary = inner.rotary_emb
            self.cos = self.sin = torch.zeros(0, self.head_dim)
            self._rope_tables(_INITIAL_CACHE)
            # rotate_half(x) == x[:, _halves_swapped] * _sign: one gather instead of two slices, a negation and a cat.
            half = self.head_dim // 2
            self._halves_swapped = torch.cat((torch.arange(half, self.head_dim), torch.arange(half)))
            self._sign = torch.cat((-torch.ones(half), torch.ones(half)))
        self.input_dtype = self.layers[0].qkv.input_dtype if self.layers else torch.float32
        roles = [getattr(layer, role) for layer in self.layers for role in ("qkv", "out", "gate_up", "down")]
        # The compiled step writes every matmul input in one dtype, as the torch step does.
        same_input = all(linear.input_dtype == self.input_dtype for linear in roles)
        self.kernels = kernels if kernels is not None and same_input and self.layers else None

    def _rope_tables(self, needed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for positions [0, needed), from the model's own rotary module (any rope scaling it has).

        Returns the pair it checked: another conversation may swap self.cos/self.sin meanwhile, for tables grown
        to its own need, so a caller that hands raw pointers to C uses these."""
        tables = self.cos, self.sin
        if needed <= tables[0].shape[0]:
            return tables
        # Grown by doubling: a 128k-context model should not hold a 128k table for a short chat.
        count = min(self.max_positions, max(needed, 2 * tables[0].shape[0]))
        with torch.no_grad():
            cos, sin = self.rotary(self.embed[:1][None], torch.arange(count)[None])
        tables = cos[0].float().contiguous(), sin[0].float().contiguous()
        self.cos, self.sin = tables
        return tables

    def new_cache(self, expected: int) -> KVCache:
        """An empty cache sized for `expected` positions (it grows if a reply runs longer)."""
        capacity = min(self.max_positions, expected + _INITIAL_CACHE)
        cache = KVCache(len(self.layers), self.n_kv, self.head_dim, capacity, self.hidden, self.input_dtype)
        if self.kernels is not None:
            cache.native = NativeBuffers(
                residual=torch.empty(1, self.hidden),
                final=torch.empty(1, self.hidden),
                attended=torch.empty(1, self.n_heads * self.head_dim, dtype=self.input_dtype),
                activation=torch.empty(1, self.intermediate, dtype=self.input_dtype),
                scores=torch.empty(self.n_heads * capacity),
            )
        return cache

    def project_qkv(self, layer: _Layer, h: torch.Tensor) -> torch.Tensor:
        """layer.qkv(h) [rows, (heads + 2 kv) * dim], with Qwen2's biases and Qwen3's per-head q/k norms where the
        layer has them (then in float32); a Llama layer's output is returned as the matmul gave it."""
        qkv = layer.qkv(h)
        if layer.qkv_bias is None and layer.q_norm is None:
            return qkv
        qkv = qkv.float()
        if layer.qkv_bias is not None:
            qkv = qkv + layer.qkv_bias
        if layer.q_norm is not None and layer.k_norm is not None:
            rows, dim = qkv.shape[0], self.head_dim
            q_width, k_end = self.n_heads * dim, (self.n_heads + self.n_kv) * dim
            q = F.rms_norm(qkv[:, :q_width].reshape(rows, self.n_heads, dim), (dim,), layer.q_norm, self.eps)
            k = F.rms_norm(qkv[:, q_width:k_end].reshape(rows, self.n_kv, dim), (dim,), layer.k_norm, self.eps)
            qkv = torch.cat((q.view(rows, q_width), k.view(rows, k_end - q_width), qkv[:, k_end:]), dim=1)
        return qkv

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = self.head_dim // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def _normed(self, x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """RMSNorm (the HF forward's arithmetic) written into `out`, in the next matmul's input dtype: about half the
        time of F.rms_norm plus a conversion."""
        scale = x.pow(2).mean(-1, keepdim=True).add_(self.eps).rsqrt_()
        return torch.mul(x * scale, weight, out=out)

    def forward(self, token_ids: list[int], cache: KVCache) -> torch.Tensor:
        """Run token_ids after what the cache holds (a whole prompt, or one token); logits of the last one."""
        if len(token_ids) == 1:
            if cache.native is not None and self.kernels is not None:
                return self._decode_native(token_ids[0], cache, cache.native, self.kernels)
            return self._decode(token_ids[0], cache)
        if cache.length:
            raise ValueError("the CPU decoder extends a filled cache one token at a time")
        return self._prefill(token_ids, cache)

    def _prefill(self, token_ids: list[int], cache: KVCache) -> torch.Tensor:
        n = len(token_ids)
        cache.reserve(n, self.max_positions)
        self._rope_tables(n)
        heads, kv, dim = self.n_heads, self.n_kv, self.head_dim
        x = self.embed[torch.tensor(token_ids)]  # [n, hidden]
        cos, sin = self.cos[:n][:, None], self.sin[:n][:, None]  # [n, 1, dim]
        q_width, kv_width = heads * dim, kv * dim
        group = heads // kv
        for index, layer in enumerate(self.layers):
            h = F.rms_norm(x, (self.hidden,), layer.norm1, self.eps)
            qkv = self.project_qkv(layer, h.to(layer.qkv.input_dtype)).float()
            qk = self._rope(qkv[:, : q_width + kv_width].view(n, heads + kv, dim), cos, sin)
            q = qk[:, :heads].transpose(0, 1)  # [heads, n, dim]
            cache.keys[index, :, :n] = qk[:, heads:].transpose(0, 1)
            cache.values[index, :, :n] = qkv[:, q_width + kv_width :].view(n, kv, dim).transpose(0, 1)
            keys = cache.keys[index, :, :n].repeat_interleave(group, 0)
            values = cache.values[index, :, :n].repeat_interleave(group, 0)
            # Causal attention from position 0 on the fused kernel; the scale is already in the query weights.
            attended = F.scaled_dot_product_attention(q, keys, values, is_causal=True, scale=1.0)
            x = x + layer.out(attended.transpose(0, 1).reshape(n, q_width).to(layer.out.input_dtype))
            h = F.rms_norm(x, (self.hidden,), layer.norm2, self.eps)
            gate_up = layer.gate_up(h.to(layer.gate_up.input_dtype))
            act = F.silu(gate_up[:, : self.intermediate]) * gate_up[:, self.intermediate :]
            x = x + layer.down(act.to(layer.down.input_dtype))
        cache.length = n
        return self.head(F.rms_norm(x[-1:], (self.hidden,), self.norm, self.eps))

    def _decode(self, token: int, cache: KVCache) -> torch.Tensor:
        """One token at position cache.length: the hot loop of a chat."""
        position = cache.length
        end = position + 1
        cache.reserve(end, self.max_positions)
        self._rope_tables(end)
        heads, kv, dim = self.n_heads, self.n_kv, self.head_dim
        q_rows, qk_width = heads // kv, (heads + kv) * dim
        cos, signed_sin = self.cos[position], self.sin[position] * self._sign
        normed = cache.normed
        # Only the matmuls are worth sharing between threads: attention of one token is too small to wait for one.
        threads = torch.get_num_threads()
        x = self.embed[token : token + 1]  # a view: never written in place
        for index, layer in enumerate(self.layers):
            qkv = self.project_qkv(layer, self._normed(x, layer.norm1, normed)).float()
            torch.set_num_threads(1)
            qk = qkv[:, :qk_width].view(heads + kv, dim)  # rope on q and k at once, the HF forward's arithmetic
            qk = qk * cos + torch.index_select(qk, 1, self._halves_swapped) * signed_sin
            keys, values = cache.keys[index], cache.values[index]
            keys[:, position] = qk[heads:]
            values[:, position] = qkv[:, qk_width:].view(kv, dim)
            # One query sees every cached position, no mask; query heads grouped by their shared KV head make this
            # two small bmm calls (SDPA with enable_gqa takes a slow generic path on CPU).
            scores = torch.bmm(qk[:heads].view(kv, q_rows, dim), keys[:, :end].transpose(1, 2))
            attended = torch.bmm(torch.softmax(scores, dim=-1), values[:, :end]).view(1, heads * dim)
            torch.set_num_threads(threads)
            x = x + layer.out(attended.to(normed.dtype))
            # SiLU and the product in float32, rounded once for the down matmul (bf16 twice cost greedy choices).
            gate_up = layer.gate_up(self._normed(x, layer.norm2, normed)).float()
            act = F.silu(gate_up[:, : self.intermediate]) * gate_up[:, self.intermediate :]
            x = x + layer.down(act.to(normed.dtype))
        cache.length = end
        return self.head(F.rms_norm(x, (self.hidden,), self.norm, self.eps))

    def _decode_native(self, token: int, cache: KVCache, buffers: NativeBuffers, kernels: ctypes.CDLL) -> torch.Tensor:
        """_decode with the work between matmuls done by the compiled kernels (decode_kernels.c): one C call per
        stretch instead of ~30 torch ops a layer. The matmuls, the head and the cache stay torch's."""
        position = cache.length
        end = position + 1
        cache.reserve(end, self.max_positions)
        cos_table, sin_table = self._rope_tables(end)  # held here: the C code reads them through raw pointers
        heads, kv, dim, hidden = self.n_heads, self.n_kv, self.head_dim, self.hidden
        capacity = cache.keys.shape[2]
        if buffers.scores.numel() < heads * end:
            buffers.scores = torch.empty(heads * capacity)
        layer_bytes = kv * capacity * dim * cache.keys.element_size()
        row_bytes = dim * cos_table.element_size()
        cos, sin = cos_table.data_ptr() + position * row_bytes, sin_table.data_ptr() + position * row_bytes
        keys, values, scores = cache.keys.data_ptr(), cache.values.data_ptr(), buffers.scores.data_ptr()
        normed, attended, activation = cache.normed, buffers.attended, buffers.activation
        x = buffers.residual
        in_bf16 = int(normed.dtype == torch.bfloat16)
        x_at, normed_at, attended_at, activation_at = (
            x.data_ptr(),
            normed.data_ptr(),
            attended.data_ptr(),
            activation.data_ptr(),
        )
        x.copy_(self.embed[token])
        delta = None  # the last matmul's output, added to the residual stream by the next norm
        for index, layer in enumerate(self.layers):
            kernels.tb_residual_norm(
                x_at, _at(delta), _bf16(delta), layer.norm1.data_ptr(), hidden, self.eps, normed_at, in_bf16
            )
            qkv = self.project_qkv(layer, normed)
            kernels.tb_attend(
                qkv.data_ptr(),
                _bf16(qkv),
                cos,
                sin,
                keys + index * layer_bytes,
                values + index * layer_bytes,
                capacity,
                position,
                heads,
                kv,
                dim,
                scores,
                attended_at,
                in_bf16,
            )
            out = layer.out(attended)
            kernels.tb_residual_norm(
                x_at, out.data_ptr(), _bf16(out), layer.norm2.data_ptr(), hidden, self.eps, normed_at, in_bf16
            )
            gate_up = layer.gate_up(normed)
            kernels.tb_swiglu(gate_up.data_ptr(), _bf16(gate_up), self.intermediate, activation_at, in_bf16)
            delta = layer.down(activation)
        kernels.tb_residual_norm(
            x_at, _at(delta), _bf16(delta), self.norm.data_ptr(), hidden, self.eps, buffers.final.data_ptr(), 0
        )
        cache.length = end
        return self.head(buffers.final)


def _at(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def _bf16(tensor: torch.Tensor | None) -> int:
    return int(tensor is not None and tensor.dtype == torch.bfloat16)
