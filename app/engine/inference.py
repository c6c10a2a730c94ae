"""Streaming chat with a base model, a tuned adapter or a checkpoint: KV cache, greedy or top-p, stop strings.

A ChatEngine holds the loaded models for as long as the app lives (app.state.chat_engine; a bench or a test builds
its own). Importing this module, or building an engine, loads no torch: the first chat does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.engine import _hf, batch_generate, constrained, native
from app.engine.call_reader import CallReader
from app.engine.catalog import resolve_base_model
from app.engine.chat_types import ChatChunk, ChatParams, Completion, ModelRef
from app.engine.cpu_share import CoreShare
from app.engine.decoding import Detokenizer, Step, held_back, hf_steps, next_token, stop_list
from app.engine.throughput import ChatSpeeds
from app.engine.tokenizer import load_tokenizer, render_chat
from app.errors import Invalid, NotFound

if TYPE_CHECKING:  # the engine runs without pydantic (e.g. on a bare GPU box): settings is duck-typed
    from app.config import Settings
    from app.engine.cpu_decoder import LlamaDecoder

CACHE_SIZE = 3  # loaded models kept in memory; the compare view needs two at once
# One load at a time in the whole process, whichever engine asks: transformers' meta-device init and
# quantize_dynamic are not safe to run concurrently (two cold models in the compare view crashed with meta tensors).
_load_lock = threading.Lock()


@dataclass(frozen=True)
class LoadProgress:
    """How far a model's load has got: the phase in words, its number among the load's phases, the share done."""

    phase: str
    step: int
    total: int

    @property
    def fraction(self) -> float:
        """The share of the load's phases already done (0 while the first runs)."""
        return (self.step - 1) / self.total if self.total else 0.0


READING, ADAPTER, DECODER = "reading weights", "applying the adapter", "preparing the CPU decoder"
WAITING = "waiting for another model to finish loading"


@dataclass
class LoadedModel:
    """A model ready to chat: its tokenizer, end-of-turn ids, context length and what computes its logits."""

    model: Any  # the Hugging Face model, for architectures the CPU decoder does not cover (else None)
    tokenizer: Any
    eos_ids: frozenset[int]
    max_positions: int
    decoder: LlamaDecoder | None = None  # the CPU decoder when the model is Llama-shaped
    vocab_size: int = 0  # the width of its logits (a grammar's token mask covers them all)


class ChatEngine:
    """The models loaded for chat (the last CACHE_SIZE used) and this process's view of its CPU cores.

    Cheap to build: nothing loads before the first chat. close() (or leaving a `with` block) frees the models.
    """

    def __init__(self, settings: Settings, cache_size: int = CACHE_SIZE):
        # OpenMP reads its variables once, when torch loads: set them now, before anything can load it.
        _hf.set_spin(settings.engine_spin)
        self.settings = settings
        self.cache_size = cache_size
        self.cores = CoreShare()  # one view of the machine for every conversation of this engine
        self._cache: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._progress: dict[tuple, LoadProgress] = {}  # the loads under way, by cache key
        self._loaded = threading.Condition(self._cache_lock)  # notified whenever a model joins the cache
        self.grammars = constrained.Grammars()  # compiled grammars of constrained replies, per tokenizer
        self.speeds = ChatSpeeds(Path(settings.data_dir))  # measured decoding tokens/s, for the model list

    def __enter__(self) -> ChatEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Free every loaded model (replies still streaming keep theirs until they end)."""
        self.clear()

    def clear(self) -> None:
        """Forget every loaded model (after deleting a model, or in tests)."""
        with self._cache_lock:
            self._cache.clear()
        self.grammars.clear()

    def is_loaded(self, ref: ModelRef) -> bool:
        """Whether the model is loaded (its next chat starts without a load)."""
        key = _cache_key(ref)
        with self._cache_lock:
            return key in self._cache

    def load_progress(self, ref: ModelRef) -> LoadProgress | None:
        """How far the model's load has got while it loads; None when it is loaded or nobody is loading it."""
        key = _cache_key(ref)
        with self._cache_lock:
            return self._progress.get(key)

    def preload(self, ref: ModelRef) -> None:
        """Load the model now (if it is not loaded already), so its first chat does not wait."""
        self.get_model(ref)

    def wait_loaded(self, ref: ModelRef, timeout: float) -> bool:
        """Wait until the model is loaded, by whoever loads it; False when `timeout` seconds pass first."""
        key = _cache_key(ref)
        with self._loaded:
            return self._loaded.wait_for(lambda: key in self._cache, timeout)

    def _report(self, key: tuple, phase: str, step: int, total: int) -> None:
        with self._cache_lock:
            self._progress[key] = LoadProgress(phase, step, total)

    def get_model(self, ref: ModelRef) -> LoadedModel:
        """A loaded model from the LRU, loading it (once, even with concurrent callers) when missing."""
        key = _cache_key(ref)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._cache_lock:
                if key in self._cache:
                    return self._cache[key]
            total = 3 if ref.adapter_path is not None else 2
            self._report(key, WAITING, 1, total)
            try:
                with _load_lock:
                    loaded = self._load(ref, lambda phase, step: self._report(key, phase, step, total))
            finally:
                with self._cache_lock:
                    self._progress.pop(key, None)
            with self._cache_lock:
                self._cache[key] = loaded
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
                self._key_locks.pop(key, None)
                self._loaded.notify_all()
        return loaded

    def _load(self, ref: ModelRef, phase: Callable[[str, int], None]) -> LoadedModel:
        phase(READING, 1)
        _hf.prepare(self.settings.engine_spin)
        # torch, transformers and peft load with the first chat, not with the server.
        import torch
        from transformers import AutoModelForCausalLM

        from app.engine import cpu_decoder, decoder_parts

        path = resolve_base_model(self.settings, ref.base_model)
        quantize = self.settings.engine_quantize
        kernels = native.load(Path(self.settings.data_dir) / "kernels") if self.settings.engine_native else None
        decoder = None
        with _hf.quiet():
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            if ref.adapter_path is not None:
                from peft import PeftModel

                phase(ADAPTER, 2)
                peft_model = PeftModel.from_pretrained(model, str(ref.adapter_path))
                if quantize and decoder_parts.supports(model):
                    # Quantized base + exact unmerged LoRA (a merged 4-bit weight would round the update away).
                    phase(DECODER, 3)
                    with torch.no_grad():
                        base = peft_model.get_base_model()
                        decoder = cpu_decoder.LlamaDecoder(base, cpu_decoder.QUANTIZED, kernels)
                # Merge in float32 so served weights equal base + LoRA delta; merged means no extra matmuls per token.
                model = peft_model.merge_and_unload()
        model.eval()
        phase(DECODER, 3 if ref.adapter_path is not None else 2)
        if decoder is None and decoder_parts.supports(model):
            # Decoding one token reads every weight: 4/8-bit weights are less memory traffic, and the decoder's loop
            # drops the per-module overhead that dominated the HF forward (bench/README.md).
            with torch.no_grad():
                decoder = cpu_decoder.LlamaDecoder(model, cpu_decoder.QUANTIZED if quantize else "fp32", kernels)
        elif decoder is None and quantize:
            from torch.ao.quantization import quantize_dynamic

            with _hf.quiet():
                model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        tokenizer = load_tokenizer(path)
        eos = {tokenizer.eos_token_id}
        generation_eos = getattr(model.generation_config, "eos_token_id", None)
        eos.update(generation_eos if isinstance(generation_eos, list) else [generation_eos])
        eos.discard(None)
        max_positions = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        vocab_size = int(getattr(model.config, "vocab_size", 0) or len(tokenizer))
        # The CPU decoder keeps its own copies of the weights: the HF model is not needed any more.
        return LoadedModel(None if decoder else model, tokenizer, frozenset(eos), max_positions, decoder, vocab_size)

    def guide_for(self, loaded: LoadedModel, params: ChatParams) -> constrained.Compiled | None:
        """The compiled grammar that params' response_format/tools/tool_choice put on a reply (None: no constraint)."""
        plan = constrained.plan(params)
        if plan is None:
            return None
        return self.grammars.compile(loaded.tokenizer, loaded.vocab_size, loaded.eos_ids, plan)

    def _decoder_steps(self, decoder: LlamaDecoder, expected: int) -> Step:
        """The CPU decoder's step function, on as many threads as the engine_spin setting and the machine allow."""
        import torch

        cache = decoder.new_cache(expected)
        spin, cores = self.settings.engine_spin, self.cores

        def step(ids: list[int]):
            if spin == "on":
                return decoder.forward(ids, cache)
            # One token is ~600 tiny ops: a second thread pays only while it spins on a core of its own; with another
            # process busy, waiting for it costs more than the core gains (cpu_share), for a prompt's larger matmuls
            # too. omp_set_num_threads is per calling thread, so this stays local to this conversation.
            threads = torch.get_num_threads()
            with cores.decoding():
                torch.set_num_threads(1 if spin == "off" else cores.threads(threads))
                try:
                    return decoder.forward(ids, cache)
                finally:
                    torch.set_num_threads(threads)

        return step

    def stream_chat(
        self,
        ref: ModelRef,
        messages: list[dict],
        params: ChatParams | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[ChatChunk]:
        """Yield the assistant's reply as text deltas (and tool-call deltas, with tools), then a final chunk with
        finish_reason and usage. response_format and tools/tool_choice constrain the decoding (constrained.py)."""
        _hf.prepare(self.settings.engine_spin)
        import torch

        params = params or ChatParams()
        if not messages:
            raise Invalid("A chat needs at least one message.", param="messages")
        if params.max_tokens < 1:
            raise Invalid("max_tokens must be at least 1.", param="max_tokens")
        constrained.plan(params)  # a malformed tools/response_format request fails before a model loads
        loaded = self.get_model(ref)
        tokenizer, model = loaded.tokenizer, loaded.model
        prompt = render_chat(tokenizer, messages, add_generation_prompt=True, tools=params.tools)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        room = loaded.max_positions - len(prompt_ids)
        if room < 1:
            raise Invalid(
                f"The conversation is {len(prompt_ids)} tokens long; {ref.name} reads at most {loaded.max_positions}.",
                code="context_length_exceeded",
                param="messages",
            )
        max_tokens = min(params.max_tokens, room)
        stops = stop_list(params.stop)
        generator = None
        if params.seed is not None:
            generator = torch.Generator().manual_seed(params.seed)

        compiled = self.guide_for(loaded, params)
        guide = compiled.guide() if compiled is not None else None
        reader = CallReader() if compiled is not None and compiled.reads_calls else None
        generated: list[int] = []
        first_at = 0.0  # when the first token came
        detokenizer = Detokenizer(tokenizer)
        text = ""
        emitted = 0
        finish = "length"
        by_string = False
        if loaded.decoder is not None:
            step = self._decoder_steps(loaded.decoder, len(prompt_ids) + max_tokens)
        else:
            step = hf_steps(model)
        next_ids = prompt_ids
        for _ in range(max_tokens):
            if should_stop is not None and should_stop():
                finish = "stop"
                break
            # Grad mode is thread-local and this generator may resume on another worker thread: scope it per step.
            with torch.inference_mode():
                if guide is None:
                    token = next_token(step(next_ids), params, generator)
                else:
                    token = guide.choose(step(next_ids), params, generator)
            if token in loaded.eos_ids:
                finish = "stop"
                break
            generated.append(token)
            if len(generated) == 1:
                first_at = time.monotonic()  # decoding speed counts from here: the prompt's prefill is not decoding
            next_ids = [token]
            text = detokenizer.add(token)
            hits = [i for i in (text.find(s, max(0, emitted - len(s))) for s in stops) if i >= 0]
            if hits:
                if min(hits) > emitted:
                    end = min(hits)
                    yield from _read(reader, text[:end]) if reader else [ChatChunk(text[emitted:end])]
                finish, by_string = "stop", True
                break
            safe = len(text) - held_back(text, stops)
            if safe > emitted:
                yield from _read(reader, text[:safe]) if reader else [ChatChunk(text[emitted:safe])]
                emitted = safe
        if not by_string and generated:
            # Flush what was held back for a stop string that never came (minus a dangling partial character).
            tail = text[emitted:].rstrip("\ufffd")
            if tail:
                yield from _read(reader, text[:emitted] + tail) if reader else [ChatChunk(tail)]
        if reader is not None:
            held = reader.finish()
            if held:
                yield ChatChunk(held)
            if reader.made() and finish == "stop":
                finish = "tool_calls"
        if len(generated) > 1:
            self.speeds.record(ref.base_model, len(generated) - 1, time.monotonic() - first_at)
        usage = {
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": len(generated),
            "total_tokens": len(prompt_ids) + len(generated),
        }
        yield ChatChunk("", finish_reason=finish, usage=usage)

    def generate_batch(
        self,
        ref: ModelRef,
        conversations: list[list[dict]],
        params: ChatParams,
        should_stop: Callable[[], bool] | None = None,
        batch_size: int | None = None,
        on_done: Callable[[int, Completion], None] | None = None,
    ) -> list[Completion]:
        """A reply to each conversation, decoded many at a time (batch_generate.py); stream_chat's rules per reply.

        A conversation that cannot be generated gets an "error" completion without failing the others; on_done(index,
        completion) is called as each reply ends; should_stop() is checked every step. batch_size defaults to the
        eval_batch_size setting."""
        _hf.prepare(self.settings.engine_spin)
        constrained.plan(params)
        loaded = self.get_model(ref)
        return batch_generate.generate(
            loaded,
            ref.name,
            conversations,
            params,
            compiled=self.guide_for(loaded, params),
            spin=self.settings.engine_spin,
            cores=self.cores,
            batch_size=batch_size or self.settings.eval_batch_size,
            should_stop=should_stop,
            on_done=on_done,
        )


def _read(reader: CallReader, text: str) -> list[ChatChunk]:
    """What a reply's text so far adds, split into content and tool-call deltas (none when nothing is certain)."""
    content, calls = reader.feed(text)
    return [ChatChunk(content, tool_calls=calls or None)] if content or calls else []


def _cache_key(ref: ModelRef) -> tuple:
    adapter = None
    if ref.adapter_path is not None:
        weights = Path(ref.adapter_path) / "adapter_model.safetensors"
        if not weights.exists():
            raise NotFound(f"The adapter of {ref.name} is missing at {ref.adapter_path}.", code="model_not_found")
        # A rewritten adapter (same path, new file) must not be served from the old cache entry.
        adapter = (str(Path(ref.adapter_path).resolve()), weights.stat().st_mtime_ns)
    return (ref.base_model, adapter)
