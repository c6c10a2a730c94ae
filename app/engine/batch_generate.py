"""Replies to many conversations at once on the local engine (evaluation runs): continuous batching.

Up to `batch_size` conversations decode together, one token each per step (batch_decoder.py: one weight read for
the whole batch); a conversation that ends (end-of-turn, stop string, max_tokens) frees its slot for the next
waiting one, whose prompt is prefilled alone (the start every prompt shares is computed once). Each reply follows
stream_chat's rules exactly: the same chat template, end-of-turn ids, stop strings (the text cut before one),
sampling with a generator seeded per conversation, the same context limit; on the CPU decoder's quantized weights
greedy replies are the very tokens stream_chat would give. A constrained reply (response_format, tools) has a
grammar guide of its own (constrained.py) masking its row's logits, and its tool calls read as stream_chat reads them.
Models the CPU decoder does not cover step through the Hugging Face forward one conversation at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jinja2 import TemplateError

from app.engine.call_reader import read_calls
from app.engine.chat_types import ChatParams, Completion
from app.engine.constrained import Compiled, Guide
from app.engine.cpu_share import MAX_DECODE_THREADS, CoreShare
from app.engine.decoding import Detokenizer, Step, held_back, hf_steps, next_token, stop_list
from app.engine.tokenizer import render_chat
from app.errors import Invalid

if TYPE_CHECKING:
    from app.engine.cpu_decoder import LlamaDecoder

DEFAULT_BATCH_SIZE = 16
MIN_GROUP = 4  # rows per thread: the 4-bit matmul's cost per row falls ~2.4x from 1 row to 4 (bench/README.md)
OnDone = Callable[[int, Completion], None]


class LoadedModel(Protocol):
    """What generation needs of inference.LoadedModel (a protocol: inference imports this module, not the reverse)."""

    model: Any
    tokenizer: Any
    eos_ids: frozenset[int]
    max_positions: int
    decoder: LlamaDecoder | None
    vocab_size: int


@dataclass
class _Prompt:
    """A conversation ready to decode: its token ids and how many tokens its reply may take."""

    index: int
    ids: list[int]
    max_tokens: int


@dataclass
class _Row:
    """A conversation being decoded: stream_chat's loop state, one step at a time."""

    prompt: _Prompt
    state: Any  # the backend's: a KVCache, or a Hugging Face step function
    detokenizer: Detokenizer
    generator: Any
    logits: Any = None  # next-token logits waiting to be sampled; None while `token` waits for a forward
    token: int | None = None
    generated: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0  # how much of `text` stream_chat would have sent by now
    guide: Guide | None = None  # the grammar of a constrained reply
    reads_calls: bool = False  # whether tool calls are read out of the reply

    def accept(self, token: int, eos_ids: frozenset[int], stops: list[str]) -> Completion | None:
        """Take a sampled token; the completion when the reply ends with it (stream_chat's rules, in its order)."""
        if token in eos_ids:
            return self._done("stop", self._flushed())
        self.generated.append(token)
        text = self.text = self.detokenizer.add(token)
        hits = [i for i in (text.find(s, max(0, self.emitted - len(s))) for s in stops) if i >= 0]
        if hits:
            return self._done("stop", text[: max(min(hits), self.emitted)])
        self.emitted = max(self.emitted, len(text) - held_back(text, stops))
        if len(self.generated) >= self.prompt.max_tokens:
            return self._done("length", self._flushed())
        self.token = token
        return None

    def _flushed(self) -> str:
        """The text sent so far plus what was held back for a stop string that never came (no dangling U+FFFD)."""
        return self.text[: self.emitted] + self.text[self.emitted :].rstrip("\ufffd") if self.generated else ""

    def _done(self, finish: str, text: str) -> Completion:
        if not self.reads_calls:
            return Completion(text, finish, len(self.prompt.ids), len(self.generated))
        content, calls = read_calls(text)
        finish = "tool_calls" if calls and finish == "stop" else finish
        return Completion(content, finish, len(self.prompt.ids), len(self.generated), tool_calls=calls or None)


class _DecoderBackend:
    """Conversations on the CPU decoder: one batched step for every row or, given several threads, one step per
    group of rows, each group on a thread of its own. A step is mostly 4-bit matmuls (which OpenMP threads share
    well) and the C kernels' per-row work (which they do not share at all): a group per thread shares both.
    Prompts waiting for a slot are prefilled the same way, a group per thread."""

    def __init__(self, loaded: LoadedModel, pool: ThreadPoolExecutor):
        from app.engine.batch_decoder import BatchDecoder

        assert loaded.decoder is not None
        self.batch = BatchDecoder(loaded.decoder)
        self.pool = pool

    def prepare(self, prompts: list[_Prompt]) -> None:
        self.batch.share_prefix([prompt.ids for prompt in prompts])

    def start(self, prompts: list[_Prompt], threads: int) -> list[tuple[Any, Any]]:
        # A prefill has many small ops beside its matmuls (attention, norms, the shared prefix's copies): prompts
        # prefilled side by side, one per thread, finish sooner than each on every thread.
        return self._split(prompts, min(threads, len(prompts)), self._start_alone)

    def step(self, rows: list[_Row], threads: int) -> list[Any]:
        return self._split(rows, min(threads, len(rows) // MIN_GROUP), self._step_alone)

    def _split(self, items: list, groups: int, work: Callable[[list], list]) -> list:
        """work(items) with the items cut into `groups` runs, each on a thread of its own (this one included)."""
        if groups < 2:
            return work(items)
        size = -(-len(items) // groups)
        parts = [items[start : start + size] for start in range(0, len(items), size)]
        futures = [self.pool.submit(_on_one_thread, work, part) for part in parts[1:]]
        results = _on_one_thread(work, parts[0])
        for future in futures:
            results.extend(future.result())
        return results

    def _start_alone(self, prompts: list[_Prompt]) -> list[tuple[Any, Any]]:
        started = []
        for prompt in prompts:
            cache = self.batch.new_cache(len(prompt.ids) + prompt.max_tokens)
            started.append((cache, self.batch.prefill(prompt.ids, cache)))
        return started

    def _step_alone(self, rows: list[_Row]) -> list[Any]:
        return list(self.batch.step(_tokens(rows), [row.state for row in rows]))


def _on_one_thread(work: Callable[[list], list], items: list) -> list:
    """work(items) on the calling thread alone (OpenMP's thread count and inference mode are per thread). The 4-bit
    kernels, attention and norms give each row the same bits on one thread as on several, so no token changes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            return work(items)
    finally:
        torch.set_num_threads(threads)


class _HFBackend:
    """Conversations on a Hugging Face model, stepped one at a time (stream_chat's own step function)."""

    def __init__(self, loaded: LoadedModel):
        self.model = loaded.model

    def prepare(self, prompts: list[_Prompt]) -> None:
        pass

    def start(self, prompts: list[_Prompt], threads: int) -> list[tuple[Any, Any]]:
        started = []
        for prompt in prompts:
            step: Step = hf_steps(self.model)
            started.append((step, step(prompt.ids)))
        return started

    def step(self, rows: list[_Row], threads: int) -> list[Any]:
        return [row.state([token]) for row, token in zip(rows, _tokens(rows), strict=True)]


def _tokens(rows: list[_Row]) -> list[int]:
    """The token each row waits to run through the model (every row a step is asked for has one)."""
    tokens = [row.token for row in rows]
    if None in tokens:
        raise RuntimeError("a row was stepped without a token to run")
    return [token for token in tokens if token is not None]


def generate(
    loaded: LoadedModel,
    name: str,
    conversations: list[list[dict]],
    params: ChatParams,
    *,
    spin: str,
    cores: CoreShare,
    batch_size: int = DEFAULT_BATCH_SIZE,
    should_stop: Callable[[], bool] | None = None,
    on_done: OnDone | None = None,
    compiled: Compiled | None = None,
) -> list[Completion]:
    """A completion per conversation, in order. A conversation that cannot be generated (empty, too long for the
    context, refused by the chat template) gets an "error" completion, alone; when should_stop() turns true the
    unfinished ones come back as errors with code "canceled". on_done(index, completion) is called as each reply
    ends (and for each error), never for a canceled one. `compiled`: the grammar every reply follows (params'
    response_format/tools), one guide per reply."""
    if params.max_tokens < 1:
        raise Invalid("max_tokens must be at least 1.", param="max_tokens")
    results: list[Completion | None] = [None] * len(conversations)

    def finish(index: int, completion: Completion) -> None:
        results[index] = completion
        if on_done is not None:
            on_done(index, completion)

    waiting: list[_Prompt] = []
    for index, messages in enumerate(conversations):
        prompt = _prepare(loaded, name, index, messages, params)
        if isinstance(prompt, Completion):
            finish(index, prompt)
        else:
            waiting.append(prompt)
    if waiting:
        with ThreadPoolExecutor(MAX_DECODE_THREADS - 1, thread_name_prefix="batch-step") as pool:
            backend = _DecoderBackend(loaded, pool) if loaded.decoder is not None else _HFBackend(loaded)
            decoding = _Decoding(loaded, backend, params, max(1, batch_size), compiled)
            decoding.run(waiting, spin, cores, should_stop, finish)
    stopped = "Generation stopped before this reply ended."
    return [_error(stopped, "canceled") if result is None else result for result in results]


class _Decoding:
    """The continuous batch: up to `size` rows decode together; an ended row's slot goes to the next prompt."""

    def __init__(
        self,
        loaded: LoadedModel,
        backend: _DecoderBackend | _HFBackend,
        params: ChatParams,
        size: int,
        compiled: Compiled | None = None,
    ):
        self.loaded, self.backend, self.params, self.size = loaded, backend, params, size
        self.compiled = compiled
        self.stops = stop_list(params.stop)
        self.rows: list[_Row] = []

    def run(
        self,
        prompts: list[_Prompt],
        spin: str,
        cores: CoreShare,
        should_stop: Callable[[], bool] | None,
        finish: OnDone,
    ) -> None:
        """Decode every prompt (in order) until all have ended or should_stop() is true."""
        import torch

        with _step_threads(spin, cores), torch.inference_mode():
            self.backend.prepare(prompts)
        waiting = prompts[::-1]  # popped from the end: first in, first decoded
        while waiting or self.rows:
            if should_stop is not None and should_stop():
                return
            with _step_threads(spin, cores) as threads, torch.inference_mode():
                starting = [waiting.pop() for _ in range(min(len(waiting), self.size - len(self.rows)))]
                if starting:
                    self._start(starting, threads)
                ended = self._step(threads)
            for index, completion in ended:  # outside the step: the callback may write to a database meanwhile
                finish(index, completion)

    def _start(self, prompts: list[_Prompt], threads: int) -> None:
        """Prefill prompts into free slots (a one-token prompt waits for the next step, as stream_chat runs it)."""
        import torch

        seed = self.params.seed
        for prompt, (state, logits) in zip(prompts, self.backend.start(prompts, threads), strict=True):
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            token = prompt.ids[0] if logits is None else None
            row = _Row(prompt, state, Detokenizer(self.loaded.tokenizer), generator, logits, token)
            if self.compiled is not None:
                row.guide, row.reads_calls = self.compiled.guide(), self.compiled.reads_calls
            self.rows.append(row)

    def _step(self, threads: int) -> list[tuple[int, Completion]]:
        """Run the rows that wait for logits through the model, then sample a token for every row."""
        stepping = [row for row in self.rows if row.logits is None]
        if stepping:
            for row, logits in zip(stepping, self.backend.step(stepping, threads), strict=True):
                row.logits = logits
        live, ended = [], []
        for row in self.rows:
            if row.guide is None:
                token = next_token(row.logits, self.params, row.generator)
            else:
                token = row.guide.choose(row.logits, self.params, row.generator)
            row.logits = row.token = None
            completion = row.accept(token, self.loaded.eos_ids, self.stops)
            if completion is None:
                live.append(row)
            else:
                ended.append((row.prompt.index, completion))
        self.rows = live
        return ended


def _prepare(
    loaded: LoadedModel, name: str, index: int, messages: list[dict], params: ChatParams
) -> _Prompt | Completion:
    """The conversation's prompt, or an error completion saying why it cannot be generated."""
    if not messages:
        return _error("A chat needs at least one message.", "invalid_value")
    try:
        text = render_chat(loaded.tokenizer, messages, add_generation_prompt=True, tools=params.tools)
    except (TemplateError, TypeError, ValueError) as exc:  # a template's raise_exception, or unexpected content
        return _error(f"The chat template refused this conversation: {exc}", "invalid_value")
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        return _error("The chat template rendered this conversation as nothing.", "invalid_value")
    room = loaded.max_positions - len(ids)
    if room < 1:
        message = f"The conversation is {len(ids)} tokens long; {name} reads at most {loaded.max_positions}."
        return _error(message, "context_length_exceeded", len(ids))
    return _Prompt(index, ids, min(params.max_tokens, room))


def _error(message: str, code: str, prompt_tokens: int = 0) -> Completion:
    return Completion("", "error", prompt_tokens, 0, error=message, error_code=code)


@contextlib.contextmanager
def _step_threads(spin: str, cores: CoreShare) -> Iterator[int]:
    """Threads for the next step, chosen as ChatEngine's chat steps choose them (engine_spin, other processes'
    load); set as OpenMP's count on this thread meanwhile, and given to the step to split its rows."""
    import torch

    threads = torch.get_num_threads()
    if spin == "on":
        yield threads
        return
    with cores.decoding():
        chosen = 1 if spin == "off" else cores.threads(threads)
        torch.set_num_threads(chosen)
        try:
            yield chosen
        finally:
            torch.set_num_threads(threads)
