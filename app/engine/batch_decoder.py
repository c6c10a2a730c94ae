"""One decode step for several conversations at once, over a LlamaDecoder's prepared weights and layers.

Why: on this CPU a decode step of one conversation reads every weight to multiply one row; the 4-bit matmul
kernel costs about 2.5x less per row once it multiplies four rows or more (one weight read for B tokens), and the
~600 small calls of a step are paid once for the whole batch. Each conversation keeps its own KVCache (sized to its
prompt plus its reply, so one long conversation does not make every slot long); the compiled kernels walk the rows
with per-row cache addresses and positions (decode_kernels.c, `*_rows`), one C call per stretch between matmuls.

The start that a batch's prompts share (the chat template and an eval's system prompt: half of a short prompt) is
prefilled once; each prompt then runs only its own tokens through the matmuls (share_prefix).

A row's arithmetic is the single-conversation step's: the same C functions per row, and the 4/8-bit matmul kernels
give each row the bits they give it alone, so greedy decoding picks the tokens LlamaDecoder picks one conversation at
a time. (Float32 weights and unmerged LoRA deltas go through BLAS, whose sums may round differently for a batch.)
Without the compiled kernels the step runs torch ops, attention one row at a time.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from app.engine.cpu_decoder import LlamaDecoder
from app.engine.decoder_parts import Head, KVCache

# A shared prefix is reused only where the CPU attention kernel (SDPA) computes a prefix row with the bits a whole
# prefill gives it: prompts under 192 tokens (its query blocks change size there) and prefixes cut to a multiple of
# 16 (its vector width: other cuts change how a row's sums are split). share_prefix checks one prompt besides.
MAX_SHARED_PROMPT = 192
PREFIX_ALIGN = 16


@dataclass
class SharedPrefix:
    """The start that a batch's prompts share: its tokens, and per layer the queries (rotated), keys and values
    that a whole prefill computes for them."""

    ids: list[int]
    queries: list[torch.Tensor]  # per layer, [heads, len(ids), head_dim]
    keys: torch.Tensor  # [layers, kv_heads, len(ids), head_dim]
    values: torch.Tensor


class BatchDecoder:
    """Prefill and batched decode steps over the weights of a LlamaDecoder (shared, never copied)."""

    def __init__(self, decoder: LlamaDecoder):
        self.decoder = decoder
        self.prefix: SharedPrefix | None = None  # what share_prefix found, used by every later prefill

    def new_cache(self, capacity: int) -> KVCache:
        """An empty cache of exactly `capacity` positions (a prompt plus its longest reply)."""
        d = self.decoder
        capacity = min(d.max_positions, max(1, capacity))
        return KVCache(len(d.layers), d.n_kv, d.head_dim, capacity, d.hidden, d.input_dtype)

    def prefill(self, token_ids: list[int], cache: KVCache) -> torch.Tensor | None:
        """Run a prompt into an empty cache; the logits of its last token, or None for a one-token prompt (that
        token then goes through `step` at position 0, as the single-conversation decoder does)."""
        if len(token_ids) == 1:
            return None
        prefix = self.prefix
        if prefix is not None and _extends(token_ids, prefix.ids):
            return self._prefill(token_ids, cache, prefix)
        return self.decoder.forward(token_ids, cache)

    def share_prefix(self, prompts: list[list[int]]) -> SharedPrefix | None:
        """Compute once the start that these prompts share (an eval's system prompt and template), for `prefill` to
        copy instead of recomputing; None when they share too little, or when this machine's kernels would not give
        the bits of a whole prefill (checked on the first prompt: then every prompt is prefilled whole)."""
        short = [ids for ids in prompts if len(ids) < MAX_SHARED_PROMPT]
        if len(short) < 2:
            return None
        first = short[0]
        length = min(len(ids) for ids in short) - 1  # every prompt keeps a token of its own to prefill
        for ids in short[1:]:
            length = next((i for i in range(length) if ids[i] != first[i]), length)
        length -= length % PREFIX_ALIGN
        if length == 0:
            return None
        d = self.decoder
        queries: list[torch.Tensor] = []
        cache = self.new_cache(length)
        self._prefill(first[:length], cache, None, queries)
        prefix = SharedPrefix(first[:length], queries, cache.keys, cache.values)
        whole, shared = d.new_cache(len(first)), self.new_cache(len(first))
        same = torch.equal(d.forward(first, whole), self._prefill(first, shared, prefix))
        filled = (slice(None), slice(None), slice(0, len(first)))
        same = same and torch.equal(whole.keys[filled], shared.keys[filled])
        self.prefix = prefix if same and torch.equal(whole.values[filled], shared.values[filled]) else None
        return self.prefix

    def _prefill(
        self,
        token_ids: list[int],
        cache: KVCache,
        prefix: SharedPrefix | None,
        queries: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """LlamaDecoder._prefill's maths for the tokens after `prefix`, whose keys and values are copied and whose
        queries join the new ones in the same attention call as a whole prefill's (so each row's arithmetic is the
        whole prefill's); `queries` collects each layer's queries (to make a prefix)."""
        d = self.decoder
        n = len(token_ids)
        start = len(prefix.ids) if prefix is not None else 0
        rows = n - start
        cache.reserve(n, d.max_positions)
        cos_table, sin_table = d._rope_tables(n)
        heads, kv, dim = d.n_heads, d.n_kv, d.head_dim
        x = d.embed[torch.tensor(token_ids[start:])]  # [rows, hidden]
        cos, sin = cos_table[start:n][:, None], sin_table[start:n][:, None]  # [rows, 1, dim]
        q_width, kv_width = heads * dim, kv * dim
        group = heads // kv
        for index, layer in enumerate(d.layers):
            h = F.rms_norm(x, (d.hidden,), layer.norm1, d.eps)
            qkv = d.project_qkv(layer, h.to(layer.qkv.input_dtype)).float()
            qk = d._rope(qkv[:, : q_width + kv_width].view(rows, heads + kv, dim), cos, sin)
            q = qk[:, :heads].transpose(0, 1)  # [heads, rows, dim]
            if prefix is not None:
                q = torch.cat((prefix.queries[index], q), dim=1)
                cache.keys[index, :, :start] = prefix.keys[index, :, :start]
                cache.values[index, :, :start] = prefix.values[index, :, :start]
            if queries is not None:
                queries.append(q)
            cache.keys[index, :, start:n] = qk[:, heads:].transpose(0, 1)
            cache.values[index, :, start:n] = qkv[:, q_width + kv_width :].view(rows, kv, dim).transpose(0, 1)
            keys = cache.keys[index, :, :n].repeat_interleave(group, 0)
            values = cache.values[index, :, :n].repeat_interleave(group, 0)
            attended = F.scaled_dot_product_attention(q, keys, values, is_causal=True, scale=1.0)[:, start:]
            x = x + layer.out(attended.transpose(0, 1).reshape(rows, q_width).to(layer.out.input_dtype))
            h = F.rms_norm(x, (d.hidden,), layer.norm2, d.eps)
            gate_up = layer.gate_up(h.to(layer.gate_up.input_dtype))
            act = F.silu(gate_up[:, : d.intermediate]) * gate_up[:, d.intermediate :]
            x = x + layer.down(act.to(layer.down.input_dtype))
        cache.length = n
        return d.head(F.rms_norm(x[-1:], (d.hidden,), d.norm, d.eps))

    def step(self, tokens: list[int], caches: list[KVCache]) -> torch.Tensor:
        """Decode tokens[r] after what caches[r] holds, for every row at once; float32 logits [rows, vocab]."""
        d = self.decoder
        for cache in caches:
            cache.reserve(cache.length + 1, d.max_positions)
        if d.kernels is not None:
            final = self._step_native(tokens, caches, d.kernels)
        else:
            final = self._step_torch(tokens, caches)
        for cache in caches:
            cache.length += 1
        return head_rows(d.head, final)

    def _step_native(self, tokens: list[int], caches: list[KVCache], kernels: ctypes.CDLL) -> torch.Tensor:
        """The rows through the compiled kernels: three C calls per layer for the whole batch."""
        d = self.decoder
        rows = len(tokens)
        positions = [cache.length for cache in caches]
        end = max(positions) + 1
        cos, sin = d._rope_tables(end)  # held here: the C code reads them through raw pointers
        heads, kv, dim, hidden = d.n_heads, d.n_kv, d.head_dim, d.hidden
        # Per-row cache addresses, capacities and positions, read by tb_attend_rows (int64 arrays).
        table = torch.tensor(
            [
                [cache.keys.data_ptr() for cache in caches],
                [cache.values.data_ptr() for cache in caches],
                [cache.keys.shape[2] for cache in caches],
                positions,
            ],
            dtype=torch.int64,
        )
        keys_at, values_at, capacities_at, positions_at = (table[i].data_ptr() for i in range(4))
        x = d.embed[torch.tensor(tokens)]  # a copy: the residual stream, written in place by the kernels
        normed = torch.empty(rows, hidden, dtype=d.input_dtype)
        attended = torch.empty(rows, heads * dim, dtype=d.input_dtype)
        activation = torch.empty(rows, d.intermediate, dtype=d.input_dtype)
        final = torch.empty(rows, hidden)
        scores = torch.empty(heads * end)
        in_bf16 = int(d.input_dtype == torch.bfloat16)
        x_at, normed_at, attended_at, activation_at = (t.data_ptr() for t in (x, normed, attended, activation))
        delta = None  # the last matmul's output, added to the residual stream by the next norm
        for index, layer in enumerate(d.layers):
            kernels.tb_residual_norm_rows(
                x_at, _at(delta), _bf16(delta), layer.norm1.data_ptr(), hidden, d.eps, normed_at, in_bf16, rows
            )
            qkv = d.project_qkv(layer, normed)
            kernels.tb_attend_rows(
                qkv.data_ptr(),
                _bf16(qkv),
                cos.data_ptr(),
                sin.data_ptr(),
                keys_at,
                values_at,
                capacities_at,
                positions_at,
                index,
                rows,
                heads,
                kv,
                dim,
                scores.data_ptr(),
                attended_at,
                in_bf16,
            )
            out = layer.out(attended)
            kernels.tb_residual_norm_rows(
                x_at, out.data_ptr(), _bf16(out), layer.norm2.data_ptr(), hidden, d.eps, normed_at, in_bf16, rows
            )
            gate_up = layer.gate_up(normed)
            kernels.tb_swiglu_rows(gate_up.data_ptr(), _bf16(gate_up), d.intermediate, activation_at, in_bf16, rows)
            delta = layer.down(activation)
        kernels.tb_residual_norm_rows(
            x_at, _at(delta), _bf16(delta), d.norm.data_ptr(), hidden, d.eps, final.data_ptr(), 0, rows
        )
        return final

    def _step_torch(self, tokens: list[int], caches: list[KVCache]) -> torch.Tensor:
        """The rows through torch ops (no C compiler, or engine_native off): LlamaDecoder._decode's maths with
        [rows, ...] matmuls; attention one row at a time, each over its own cache."""
        d = self.decoder
        rows = len(tokens)
        positions = torch.tensor([cache.length for cache in caches])
        cos_table, sin_table = d._rope_tables(int(positions.max()) + 1)
        heads, kv, dim = d.n_heads, d.n_kv, d.head_dim
        q_rows, qk_width = heads // kv, (heads + kv) * dim
        cos, signed_sin = cos_table[positions][:, None], (sin_table[positions] * d._sign)[:, None]  # [rows, 1, dim]
        normed = torch.empty(rows, d.hidden, dtype=d.input_dtype)
        attended = torch.empty(rows, heads * dim)
        threads = torch.get_num_threads()
        x = d.embed[torch.tensor(tokens)]
        for index, layer in enumerate(d.layers):
            qkv = d.project_qkv(layer, d._normed(x, layer.norm1, normed)).float()
            torch.set_num_threads(1)  # attention of one token is too small to share between threads
            qk = qkv[:, :qk_width].view(rows, heads + kv, dim)
            qk = qk * cos + torch.index_select(qk, 2, d._halves_swapped) * signed_sin
            new_values = qkv[:, qk_width:].view(rows, kv, dim)
            for row, cache in enumerate(caches):
                position = cache.length
                keys, values = cache.keys[index], cache.values[index]
                keys[:, position] = qk[row, heads:]
                values[:, position] = new_values[row]
                scores = torch.bmm(qk[row, :heads].view(kv, q_rows, dim), keys[:, : position + 1].transpose(1, 2))
                mixed = torch.bmm(torch.softmax(scores, dim=-1), values[:, : position + 1])
                attended[row] = mixed.view(heads * dim)
            torch.set_num_threads(threads)
            x = x + layer.out(attended.to(normed.dtype))
            gate_up = layer.gate_up(d._normed(x, layer.norm2, normed)).float()
            act = F.silu(gate_up[:, : d.intermediate]) * gate_up[:, d.intermediate :]
            x = x + layer.down(act.to(normed.dtype))
        return F.rms_norm(x, (d.hidden,), d.norm, d.eps)


def head_rows(head: Head, hidden: torch.Tensor) -> torch.Tensor:
    """Head.__call__ for [rows, hidden]: one (quantized) matmul for every row, then each row's top candidates
    rescored exactly, row by row as Head does it (a batched rescoring could round differently)."""
    logits = head.linear(hidden.to(head.linear.input_dtype)).float()
    if head.rows is None:
        return logits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few small ops a row: waking a second thread costs more than it saves
    try:
        for row in range(hidden.shape[0]):
            row_logits = logits[row]
            top = torch.topk(row_logits, head.candidates, sorted=False).indices
            row_logits[top] = F.linear(hidden[row : row + 1], head.rows[top])[0]
    finally:
        torch.set_num_threads(threads)
    return logits


def _extends(token_ids: list[int], prefix: list[int]) -> bool:
    return len(prefix) < len(token_ids) < MAX_SHARED_PROMPT and token_ids[: len(prefix)] == prefix


def _at(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def _bf16(tensor: torch.Tensor | None) -> int:
    return int(tensor is not None and tensor.dtype == torch.bfloat16)
