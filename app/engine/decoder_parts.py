"""The parts of the CPU chat decoder (cpu_decoder.py) that stand on their own: which models it computes exactly
(`supports`), the next-token head with exact rescoring of its top candidates, and the per-conversation KV cache
and buffers that the single and batched decoders (batch_decoder.py) both fill."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from app.engine import architectures
from app.engine.quantized_weights import make

RESCORED = 16  # head candidates given exact float32 logits; the greedy token is the best of them


def supports(model) -> bool:
    """Whether LlamaDecoder computes the model exactly: an architecture of architectures.FAST_CHAT whose layers are
    Llama's (SiLU MLP, no output or MLP biases) with at most q/k/v biases and per-head q/k norms."""
    config = getattr(model, "config", None)
    if config is None or not architectures.fast_chat(config):
        return False
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "rotary_emb") or not hasattr(inner, "layers"):
        return False
    return all(_llama_layer(layer) for layer in inner.layers)


def _llama_layer(layer) -> bool:
    """Llama's projections (Phi-3's fused ones are not), biased only on q/k/v if at all, q/k norms both or neither."""
    attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    if attn is None or mlp is None or not all(hasattr(attn, name) for name in names):
        return False
    if not all(hasattr(mlp, name) for name in ("gate_proj", "up_proj", "down_proj")):
        return False
    if any(module.bias is not None for module in (attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj)):
        return False
    biased = {getattr(attn, name).bias is not None for name in names[:3]}
    normed = {hasattr(attn, "q_norm"), hasattr(attn, "k_norm")}
    return len(biased) == 1 and len(normed) == 1


class Head:
    """Next-token logits. A quantized head (the largest matmul of a step: vocabulary x hidden) only ranks the
    vocabulary; its top RESCORED candidates get exact float32 logits from the float32 rows, so the greedy token
    is the float32 head's choice whenever that token ranks among the candidates (the 8-bit head it replaces
    still moved some choices, at 2.5x the cost)."""

    def __init__(self, kind: str, weight: torch.Tensor, rows: torch.Tensor):
        self.linear = make(kind, weight)
        self.rows = rows if kind != "fp32" else None  # float32 [vocab, hidden], shared with the embedding if tied
        self.candidates = min(RESCORED, weight.shape[0])

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: [1, hidden_size] float32 after the final norm; returns float32 logits [vocab]."""
        logits = self.linear(hidden.to(self.linear.input_dtype)).float()[0]
        if self.rows is None:
            return logits
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a few small ops: waking a second thread costs more than it saves
        try:
            top = torch.topk(logits, self.candidates, sorted=False).indices
            logits[top] = F.linear(hidden, self.rows[top])[0]
        finally:
            torch.set_num_threads(threads)
        return logits


class KVCache:
    """Keys and values of every layer, [layers, kv_heads, capacity, head_dim], filled up to `length`."""

    def __init__(self, n_layers: int, n_kv: int, head_dim: int, capacity: int, hidden: int, dtype: torch.dtype):
        self.keys = torch.zeros(n_layers, n_kv, capacity, head_dim)
        self.values = torch.zeros(n_layers, n_kv, capacity, head_dim)
        self.length = 0
        # The normalized activation fed to the next matmul, written in place (one conversation, one step at a time).
        self.normed = torch.empty(1, hidden, dtype=dtype)
        self.native: NativeBuffers | None = None  # the compiled decode step's buffers, when it runs

    def reserve(self, needed: int, limit: int) -> None:
        """Grow (doubling, up to limit) so that `needed` positions fit."""
        capacity = self.keys.shape[2]
        if needed <= capacity:
            return
        new = min(max(needed, 2 * capacity), max(limit, needed))
        pad = (0, 0, 0, new - capacity)
        self.keys, self.values = F.pad(self.keys, pad), F.pad(self.values, pad)


@dataclass
class NativeBuffers:
    """What the compiled decode step writes, per conversation: the float32 residual stream, the matmul inputs (in
    the weights' input dtype), the final normed state, and attention scores (grown with the cache)."""

    residual: torch.Tensor
    attended: torch.Tensor
    activation: torch.Tensor
    final: torch.Tensor
    scores: torch.Tensor
