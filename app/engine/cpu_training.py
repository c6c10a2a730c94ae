"""The CPU training path for PEFT LoRA models: bf16 frozen weights, a fused LoRA forward, per-example attention
and a chunked LM-head loss.

Why: on a 2-core CPU a packed training row spent a third of its time outside the big matmuls. Autocast re-cast
every frozen float32 weight to bf16 at every forward; PEFT's LoRA forward round-trips bf16 activations through
float32 and scales and adds full-width outputs; a packed row's block-diagonal mask made SDPA compute (and mask
away) attention between examples that never see each other; and the head's float32 logits (tens of MB) were
written, re-read and re-faulted several times per row. The model and its adapters stay PEFT's own, so
checkpoints, resume and inference with adapters are unchanged.

Importing this module loads torch, transformers and peft: call _hf.prepare() first (train.run_training does)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from peft.tuners.lora.layer import Linear as LoraLinear
from transformers import AttentionInterface

from app.engine import architectures

ATTENTION = "tuneboard_packed"  # the attention implementation name this module registers with transformers
MATH_ATTENTION_MAX = 512  # longer examples use SDPA's flash kernel: the plain path stores L x L scores per head
HEAD_CHUNK = 128  # rows of LM-head logits scored at once (measured: beats 64, and 16's small matmuls lose)


def packed_attention(
    module, query, key, value, attention_mask, dropout=0.0, scaling=None, packed_lengths=None, **kwargs
):
    """Causal attention within each example of a packed row, given the examples' lengths (`packed_lengths`).

    No mask is built (see `prepare`): each example attends only to itself, so the work is the sum of the examples'
    squares instead of the row's square. Without lengths the row is one example.
    """
    if attention_mask is not None:  # a caller with its own mask (padding): SDPA's masked path
        groups = module.num_key_value_groups
        out = F.scaled_dot_product_attention(
            query,
            key.repeat_interleave(groups, 1),
            value.repeat_interleave(groups, 1),
            attn_mask=attention_mask,
            scale=scaling,
        )
        return out.transpose(1, 2), None
    lengths = list(packed_lengths or [query.shape[2]])
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    parts = zip(query.split(lengths, 2), key.split(lengths, 2), value.split(lengths, 2), strict=True)
    outputs = [_causal_attention(q, k, v, scale) for q, k, v in parts]
    return (torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]), None


def _causal_attention(query, key, value, scale: float):
    """One example's causal attention, (B, H, L, D) in, (B, L, H, D) out, in the value's dtype.

    Short examples (most chats) take a plain matmul-softmax-matmul with the query heads that share a key/value
    head stacked into one matrix: on a CPU that is about twice as fast as SDPA's flash kernel in bf16, backward
    included, and needs no copies of the shared keys. Long ones take the flash kernel, whose memory stays linear.
    """
    batch, heads, length, dim = query.shape
    kv_heads = key.shape[1]
    dtype = value.dtype  # under autocast the rotary embedding left query and key in float32
    if length > MATH_ATTENTION_MAX:
        groups = heads // kv_heads
        out = F.scaled_dot_product_attention(
            query.to(dtype),
            key.to(dtype).repeat_interleave(groups, 1),
            value.repeat_interleave(groups, 1),
            is_causal=True,
            scale=scale,
        )
        return out.transpose(1, 2)
    stacked = (query.to(dtype) * scale).reshape(batch * kv_heads, heads // kv_heads * length, dim)
    scores = torch.matmul(stacked, key.to(dtype).reshape(batch * kv_heads, length, dim).transpose(1, 2))
    scores = scores.view(batch * kv_heads, -1, length, length) + _causal_bias(length, dtype)
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(dtype)  # float32 softmax, as HF's eager path
    out = torch.matmul(weights.view(batch * kv_heads, -1, length), value.reshape(batch * kv_heads, length, dim))
    return out.view(batch, heads, length, dim).transpose(1, 2)


@functools.lru_cache(maxsize=64)
def _causal_bias(length: int, dtype) -> torch.Tensor:
    """-inf above the diagonal, 0 elsewhere (rows are rebuilt rarely: chats repeat lengths within a job)."""
    return torch.full((length, length), float("-inf"), dtype=dtype).triu(1)


def _fused_lora_forward(layer, x, *args, **kwargs):
    """base(x) + B(A(x) * scaling) with the add fused into B's matmul and the scaling on the rank-r activations."""
    base = layer.base_layer
    if layer.disable_adapters:  # inside peft's disable_adapter(): the base model alone (DPO's reference)
        return F.linear(x.to(base.weight.dtype), base.weight, base.bias)
    lora_a = layer.lora_A["default"].weight
    lora_b = layer.lora_B["default"].weight
    flat = x.reshape(-1, x.shape[-1]).to(base.weight.dtype)  # once, not once per matmul (autocast would)
    low_rank = F.linear(flat, lora_a) * layer.scaling["default"]
    out = torch.addmm(F.linear(flat, base.weight, base.bias), low_rank, lora_b.t())
    return out.view(*x.shape[:-1], out.shape[-1])


def _plain_lora_linear(layer) -> bool:
    """Whether a PEFT LoRA layer is the vanilla case the fused forward reproduces (one adapter, no dropout/DoRA)."""
    return (
        isinstance(layer, LoraLinear)
        and isinstance(layer.base_layer, torch.nn.Linear)
        and list(layer.lora_A.keys()) == ["default"]
        and list(layer.active_adapters) == ["default"]
        and not layer.lora_variant
        and not layer.merged
        and not layer.disable_adapters
        and isinstance(layer.lora_dropout["default"], torch.nn.Identity)
        and layer.lora_B["default"].bias is None
    )


def supports_packed_attention(model) -> bool:
    """Whether the model's attention layers are ones whose calls packed_attention handles: plain causal attention
    (architectures.FAST_TRAINING, with no sliding window that binds, no softcapping, no dropout)."""
    config = getattr(model, "config", None)
    return config is not None and architectures.fast_training(config)


def prepare(model, dtype) -> bool:
    """Switch a PEFT LoRA model to the CPU training path; True when rows must pass `packed_lengths`.

    dtype is the autocast dtype (None: float32 throughout, weights left as they are).
    """
    inner = model.get_base_model()
    for module in inner.modules():
        if _plain_lora_linear(module):
            if dtype is not None:
                # Frozen, so only ever read by autocast in bf16: store it that way once (halves its memory too).
                module.base_layer.to(dtype)
            module.forward = _fused_lora_forward.__get__(module)
    if not supports_packed_attention(inner):
        return False
    AttentionInterface.register(ATTENTION, packed_attention)
    # A name with no mask function registered: transformers then builds no mask at all (see masking_utils).
    inner.config._attn_implementation = ATTENTION
    return True


def head_weight(head, dtype):
    """A frozen copy of the LM head's weight in the autocast dtype, for head_loss; None for a head with a bias."""
    if not isinstance(head, torch.nn.Linear) or head.bias is not None:
        return None
    return head.weight.detach().to(dtype or head.weight.dtype, copy=True)


def head_loss(hidden, weight, targets):
    """(summed cross-entropy, n correct) of the LM head on hidden states, without ever holding all the logits.

    The head is the vocabulary-wide matmul: its float32 logits for a few hundred targets are tens of MB, which
    a CPU writes, reads back for the softmax and again for its backward, and re-faults from the OS each step.
    Here each chunk of rows is scored while its logits are in cache, and its input gradient (softmax - one-hot,
    through the head) is computed at once; backward only scales it.
    """
    needs_grad = torch.is_grad_enabled() and hidden.requires_grad
    loss, correct = _ChunkedHeadLoss.apply(hidden, weight, targets, needs_grad)
    return loss, correct


class _ChunkedHeadLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, needs_grad):
        inputs = hidden.to(weight.dtype)
        grads = torch.empty_like(hidden) if needs_grad else None
        loss = torch.zeros((), dtype=torch.float32)
        correct = torch.zeros((), dtype=torch.long)
        for start in range(0, hidden.shape[0], HEAD_CHUNK):
            rows = slice(start, start + HEAD_CHUNK)
            log_probs = torch.log_softmax(F.linear(inputs[rows], weight), dim=-1, dtype=torch.float32)
            index = targets[rows].unsqueeze(1)
            picked = log_probs.gather(1, index)
            loss -= picked.sum()
            correct += _argmax_hits(log_probs, picked, index)
            if grads is not None:
                probs = log_probs.exp_()
                probs.scatter_add_(1, index, torch.full(index.shape, -1.0))
                grads[rows] = F.linear(probs.to(weight.dtype), weight.t())
        ctx.mark_non_differentiable(correct)
        ctx.save_for_backward(grads)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, grad_correct):
        (grads,) = ctx.saved_tensors
        return grads * grad_loss, None, None, None


def _argmax_hits(log_probs, picked, index) -> int:
    """How many rows' argmax is their target, from the two best values (argmax itself is ~20x slower on a CPU).

    argmax returns the first maximum, so a target tied with an earlier index is a miss (ties are rare; checked
    one by one). Log-probabilities keep the order and the ties of the bf16 logits they come from.
    """
    best = log_probs.topk(2, dim=-1).values
    at_top = picked.squeeze(1) == best[:, 0]
    tied = at_top & (best[:, 0] == best[:, 1])
    hits = int((at_top & ~tied).sum())
    for row in tied.nonzero().flatten().tolist():
        target = int(index[row])
        hits += not bool((log_probs[row, :target] == best[row, 0]).any())
    return hits
