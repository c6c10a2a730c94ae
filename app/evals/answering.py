"""Getting answers out of the model under evaluation (and out of judges): local models through the chat engine,
many conversations at a time; remote ones (OpenAI) through their provider, a few requests at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings
from app.engine.chat_types import ChatChunk, ChatParams, Completion
from app.engine.inference import ChatEngine
from app.errors import DomainError, Upstream
from app.jobs.model_catalog import ResolvedModel, resolve_model
from app.providers.base import Provider
from app.providers.registry import get_provider

log = logging.getLogger("tuneboard.evals")

OnAnswer = Callable[[int, "Answer"], None]
JUDGE_PARAMS = ChatParams(temperature=0.0, top_p=1.0, max_tokens=512)


@dataclass
class Answer:
    """One reply: its text and why it ended, its token counts, or why there is none (`error`, `error_code`)."""

    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    error_code: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # whole calls in OpenAI's shape, when the model made any


def _collect(chunks: Iterator[ChatChunk]) -> Answer:
    """A streamed reply gathered into one Answer."""
    parts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish, usage = "stop", {}
    for chunk in chunks:
        parts.append(chunk.text)
        for delta in chunk.tool_calls or ():
            # Streamed calls come as deltas: the first of a call names it, the others add argument fragments.
            call = calls.setdefault(
                int(delta.get("index", 0)), {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = delta.get("id") or call["id"]
            function = delta.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""
        if chunk.finish_reason:
            finish = chunk.finish_reason
        if chunk.usage:
            usage = chunk.usage
    return Answer(
        "".join(parts),
        finish,
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        tool_calls=[calls[index] for index in sorted(calls)] or None,
    )


def _failed(exc: Exception) -> Answer:
    if isinstance(exc, DomainError):
        return Answer("", "error", error=exc.message, error_code=exc.code)
    log.exception("generation failed")
    return Answer("", "error", error=f"{type(exc).__name__}: {exc}", error_code="model_failed")


class Answerer:
    """Answers conversations with one resolved model; `answer_many` reports each reply as it ends."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        chat_engine: ChatEngine,
        model: ResolvedModel,
        provider_options: dict[str, dict[str, Any]] | None = None,
    ):
        self.settings = settings
        self.model = model
        self.chat_engine = chat_engine
        self.provider: Provider | None = None
        if model.provider != "local":
            options = dict((provider_options or {}).get(model.provider, {}))
            options.setdefault("engine", engine)
            options.update(model.options)  # a served model's server address and key
            self.provider = get_provider(model.provider, settings, **options)

    @property
    def local(self) -> bool:
        """Whether the model runs on this machine's engine."""
        return self.provider is None

    def close(self) -> None:
        """Close what the provider holds open (the OpenAI client's connections)."""
        if self.provider is not None:
            self.provider.close()

    def warm_up(self) -> None:
        """Load a local model now, so that a model that cannot load fails the run instead of every item."""
        if self.local:
            self.chat_engine.get_model(self.model.ref)

    def answer(self, messages: list[dict[str, Any]], params: ChatParams) -> Answer:
        """One reply (an error Answer when the model could not make one)."""
        try:
            if self.provider is None:
                return _collect(self.chat_engine.stream_chat(self.model.ref, messages, params))
            return _collect(self.provider.stream_chat(self.model.ref, messages, params))
        except Exception as exc:
            return _failed(exc)

    def answer_many(
        self,
        conversations: list[list[dict[str, Any]]],
        params: ChatParams,
        should_stop: Callable[[], bool],
        on_answer: OnAnswer,
    ) -> None:
        """Answer every conversation, calling on_answer(index, answer) as each ends; those cut by should_stop are
        not reported."""
        if self.provider is None:
            _generate_local(self.chat_engine, self.model, conversations, params, should_stop, on_answer)
        else:
            self._generate_remote(conversations, params, should_stop, on_answer)

    def _generate_remote(
        self,
        conversations: list[list[dict[str, Any]]],
        params: ChatParams,
        should_stop: Callable[[], bool],
        on_answer: OnAnswer,
    ) -> None:
        # A few requests in flight: the provider's API does the batching; on_answer runs on this thread only.
        with ThreadPoolExecutor(max_workers=self.settings.eval_remote_concurrency) as pool:
            futures = {}
            for index, messages in enumerate(conversations):
                futures[pool.submit(self._remote_one, messages, params, should_stop)] = index
            for future in as_completed(futures):
                answer = future.result()
                if answer is not None:
                    on_answer(futures[future], answer)
                if should_stop():
                    for pending in futures:
                        pending.cancel()

    def _remote_one(
        self, messages: list[dict[str, Any]], params: ChatParams, should_stop: Callable[[], bool]
    ) -> Answer | None:
        if should_stop():
            return None
        return self.answer(messages, params)


def _generate_local(
    chat_engine: ChatEngine,
    model: ResolvedModel,
    conversations: list[list[dict[str, Any]]],
    params: ChatParams,
    should_stop: Callable[[], bool],
    on_answer: OnAnswer,
) -> None:
    """Local generation, many conversations decoded at once (ChatEngine.generate_batch, eval_batch_size at a time);
    each reply is reported as it ends, those cut short by should_stop never."""

    def done(index: int, completion: Completion) -> None:
        on_answer(
            index,
            Answer(
                completion.text,
                completion.finish_reason,
                completion.prompt_tokens,
                completion.completion_tokens,
                completion.error,
                completion.error_code,
                completion.tool_calls,
            ),
        )

    # An exception here (the engine broke, or on_answer found the run lost) ends the whole run: the executor says how.
    chat_engine.generate_batch(model.ref, conversations, params, should_stop=should_stop, on_done=done)


def judge_params(sampling: Any) -> ChatParams:
    """A judge grader's sampling_params as ChatParams (greedy, 512 tokens where it says nothing)."""
    given = {k: v for k, v in (sampling or {}).items() if v is not None} if isinstance(sampling, dict) else {}
    return ChatParams(
        temperature=float(given.get("temperature", JUDGE_PARAMS.temperature)),
        top_p=float(given.get("top_p", JUDGE_PARAMS.top_p)),
        max_tokens=int(
            given.get("max_completions_tokens", given.get("max_completion_tokens", JUDGE_PARAMS.max_tokens))
        ),
        seed=given.get("seed"),
    )


class Judges:
    """The judge callable graders get: `(model_id, messages) -> reply text`, each judge resolved once; usage kept."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        chat_engine: ChatEngine,
        provider_options: dict[str, dict[str, Any]] | None = None,
    ):
        self.settings = settings
        self.engine = engine
        self.chat_engine = chat_engine
        self.provider_options = provider_options
        self._answerers: dict[str, Answerer] = {}
        self.usage: dict[str, dict[str, int]] = {}

    def __call__(self, model_id: str, messages: list[dict[str, Any]], /) -> str:
        """The judge's reply with the default judge parameters (greedy); raises when it could not answer."""
        return self.ask(model_id, messages, JUDGE_PARAMS)

    def bound(self, config: dict[str, Any]) -> Callable[[str, list[dict[str, Any]]], str]:
        """The judge for one grader: its sampling_params (temperature, top_p, seed, max_completions_tokens) honoured."""
        params = judge_params(config.get("sampling_params"))

        def judge(model_id: str, messages: list[dict[str, Any]], /) -> str:
            return self.ask(model_id, messages, params)

        return judge

    def ask(self, model_id: str, messages: list[dict[str, Any]], params: ChatParams) -> str:
        """The judge's reply; raises (the grader records an error) when it could not answer."""
        answerer = self._answerers.get(model_id)
        if answerer is None:
            with Session(self.engine) as session:
                resolved = resolve_model(session, self.settings, model_id)
            answerer = Answerer(self.settings, self.engine, self.chat_engine, resolved, self.provider_options)
            self._answerers[model_id] = answerer
        answer = answerer.answer(messages, params)
        used = self.usage.setdefault(model_id, {"invocation_count": 0, "prompt_tokens": 0, "completion_tokens": 0})
        used["invocation_count"] += 1
        used["prompt_tokens"] += answer.prompt_tokens
        used["completion_tokens"] += answer.completion_tokens
        if answer.error is not None:
            raise Upstream(answer.error, code=answer.error_code or "model_failed")
        return answer.text

    def close(self) -> None:
        """Close the judges' providers."""
        for answerer in self._answerers.values():
            answerer.close()
