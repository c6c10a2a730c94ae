"""OpenAI's fine-tuning API through the official SDK (the only module that imports `openai`).

The key comes from the constructor, the settings (OPENAI_API_KEY) or the settings page (stored in the
database); it is never logged. Refusals become ProviderError with plain words; rate limits and server errors
are retried with backoff (the SDK's own retries first, then the worker's poll loop) and the job keeps going.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from app.providers.base import (
    DPO,
    SUPERVISED,
    JobContext,
    Provider,
    ProviderError,
    RemoteCheckpoint,
    RemoteEvent,
    RemoteStatus,
)
from app.providers.openai_chat import chat_chunks, chat_request
from app.providers.openai_replies import error_code, error_message, remote_status
from app.tables.settings_store import OPENAI_API_KEY, OPENAI_BASE_URL, get_secret, get_value, load_secret_key

if TYPE_CHECKING:
    from openai import OpenAI

log = logging.getLogger("tuneboard.providers.openai")

FINE_TUNABLE = [
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "gpt-3.5-turbo-0125",
]
NO_PERMISSION = (
    "OpenAI refused to fine-tune for this account ({detail}). OpenAI no longer admits new "
    "organisations to fine-tuning and ends job creation on 2027-01-06. You can run this job on the "
    "local engine instead, with the same data and settings."
)


class OpenAIProvider(Provider):
    """Options: api_key, base_url, engine (to read a key saved on the settings page), max_retries,
    poll_seconds, retry_seconds (pause after a rate limit before trying again), timeout, server (the name of the
    OpenAI-compatible chat server it talks to instead of OpenAI, for its error messages)."""

    name = "openai"
    can_restart = False  # starting again could create a second, billed job at OpenAI
    methods = (SUPERVISED, DPO)

    def __init__(
        self,
        settings: Any,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        engine: Any = None,
        max_retries: int = 2,
        poll_seconds: float = 5.0,
        retry_seconds: float = 2.0,
        timeout: float = 60.0,
        server: str | None = None,
        **options: Any,
    ):
        super().__init__(settings, **options)
        self._api_key = api_key
        self._base_url = base_url
        # A chat server of Settings.chat_servers (vLLM, llama-server…) rather than OpenAI: errors name it instead.
        self.speaker = _Speaker(f"the chat server {server}", SERVER_KEY_HINT) if server else OPENAI
        self.engine = engine
        self.max_retries = max_retries
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.timeout = timeout
        self._client: OpenAI | None = None

    # -- client and errors --------------------------------------------------------------------------------------
    def api_key(self) -> str | None:
        """The key in force: given, from the environment/settings, or saved on the settings page."""
        if self._api_key:
            return self._api_key
        if self.settings.openai_api_key:
            return self.settings.openai_api_key.get_secret_value()
        if self.engine is not None:
            with Session(self.engine) as session:
                return get_secret(session, OPENAI_API_KEY, load_secret_key(self.settings))
        return None

    @property
    def base_url(self) -> str | None:
        """The API address in force: given, saved on the settings page, or from the environment/settings."""
        if self._base_url:
            return self._base_url
        if self.engine is not None:
            with Session(self.engine) as session:
                saved = get_value(session, OPENAI_BASE_URL)
            if saved:
                return saved
        return self.settings.openai_base_url

    def close(self) -> None:
        """Close the SDK client's connection pool (a new client is made on next use)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> OpenAI:
        """The SDK client, built on first use."""
        if self._client is None:
            key = self.api_key()
            if not key:
                raise ProviderError(
                    "No OpenAI API key is set. Add one on the settings page (or set OPENAI_API_KEY), "
                    "or run this job on the local engine.",
                    code="missing_api_key",
                )
            from openai import OpenAI  # the SDK loads only when a job or chat needs it

            self._client = OpenAI(
                api_key=key,
                base_url=self.base_url or None,
                organization=self.settings.openai_organization,
                project=self.settings.openai_project,
                max_retries=self.max_retries,
                timeout=self.timeout,
            )
        return self._client

    def _call(self, what: str, fn, *args: Any, **kwargs: Any) -> Any:
        """Call the SDK, turning its exceptions into ProviderError with plain words."""
        with _translated(what, self.speaker):
            return fn(*args, **kwargs)

    def _retrying(self, ctx: JobContext | None, what: str, fn, *args: Any, **kwargs: Any) -> Any:
        """_call, retrying rate limits and server errors with growing pauses (the job keeps going)."""
        delay = self.retry_seconds
        for attempt in range(6):
            try:
                return self._call(what, fn, *args, **kwargs)
            except ProviderError as exc:
                if not exc.retryable or attempt == 5:
                    raise
                if ctx is not None:
                    ctx.event(f"{exc.message} Trying again in {delay:g} s.", level="warn")
                    if ctx.wait(delay):
                        raise
                delay = min(delay * 2, 60.0)
        raise AssertionError("unreachable")

    # -- Provider operations ------------------------------------------------------------------------------------
    def list_base_models(self) -> list[str]:
        """OpenAI models that accept supervised fine-tuning (as documented)."""
        return list(FINE_TUNABLE)

    def start(self, ctx: JobContext) -> str:
        """Upload the snapshots (purpose fine-tune) and create the job; returns OpenAI's job id."""
        spec = ctx.spec
        training = spec.training_file_id or self._upload(ctx, spec.train_file)
        validation = spec.validation_file_id or (
            self._upload(ctx, spec.validation_file) if spec.validation_file else None
        )
        hyper = {k: v for k, v in spec.hyperparameters.items() if v != "auto"}
        body: dict[str, Any] = {
            "model": spec.model,
            "training_file": training,
            "method": {"type": spec.method_type, spec.method_type: {"hyperparameters": hyper}},
        }
        for key, value in (
            ("validation_file", validation),
            ("suffix", spec.suffix),
            ("seed", spec.seed),
            ("metadata", spec.metadata),
        ):
            if value is not None:
                body[key] = value
        job = self._retrying(ctx, "create the fine-tuning job", self.client.fine_tuning.jobs.create, **body)
        ctx.event(f"OpenAI accepted the job as {job.id}.")
        return job.id

    def _upload(self, ctx: JobContext, path: str) -> str:
        with open(path, "rb") as handle:
            uploaded = self._retrying(
                ctx,
                "upload the training file",
                self.client.files.create,
                file=(Path(path).name, handle.read()),
                purpose="fine-tune",
            )
        ctx.event(f"Uploaded {Path(path).name} to OpenAI as {uploaded.id}.")
        return uploaded.id

    def poll(self, provider_job_id: str, after_event: str | None) -> tuple[RemoteStatus, list[RemoteEvent]]:
        """The job and its events newer than after_event (OpenAI pages newest first; returned oldest first)."""
        job = self._call("read the job", self.client.fine_tuning.jobs.retrieve, provider_job_id)
        events: list[RemoteEvent] = []
        cursor = None
        while True:
            kwargs = {"limit": 100} | ({"after": cursor} if cursor else {})
            page = self._call(
                "read the job's events", self.client.fine_tuning.jobs.list_events, provider_job_id, **kwargs
            )
            hit = False
            for ev in page.data:
                if ev.id == after_event:
                    hit = True
                    break
                events.append(
                    RemoteEvent(
                        id=ev.id,
                        created_at=ev.created_at,
                        level=ev.level,
                        message=ev.message,
                        type=getattr(ev, "type", None) or "message",
                        data=getattr(ev, "data", None),
                    )
                )
            if hit or not page.has_more or not page.data:
                break
            cursor = page.data[-1].id
        events.reverse()
        return remote_status(job), events

    def list_checkpoints(self, provider_job_id: str) -> list[RemoteCheckpoint]:
        """The job's checkpoints, every page."""
        out = []
        with _translated("list checkpoints"):  # later pages are fetched while iterating
            pages = list(self.client.fine_tuning.jobs.checkpoints.list(provider_job_id, limit=100))
        for cp in pages:
            metrics = cp.metrics.model_dump(exclude_none=True) if cp.metrics is not None else {}
            out.append(
                RemoteCheckpoint(
                    id=cp.id,
                    step_number=cp.step_number,
                    metrics=metrics,
                    fine_tuned_model_checkpoint=cp.fine_tuned_model_checkpoint,
                    created_at=cp.created_at,
                )
            )
        return out

    def cancel(self, provider_job_id: str) -> None:
        """Ask OpenAI to cancel; the poll loop reflects it once OpenAI confirms."""
        self._retrying(None, "cancel the job", self.client.fine_tuning.jobs.cancel, provider_job_id)

    def delete_model(self, model_id: str) -> None:
        """Delete a fine-tuned model at OpenAI."""
        self._call("delete the model", self.client.models.delete, model_id)

    def list_remote_jobs(self) -> Iterator[dict[str, Any]]:
        """Every fine-tuning job of the account (all pages), as plain dicts."""
        with _translated("list jobs"):  # later pages are fetched while iterating
            jobs = list(self.client.fine_tuning.jobs.list(limit=100))
        for job in jobs:
            yield job.model_dump() | {"_status": remote_status(job)}

    def list_remote_events(self, provider_job_id: str) -> list[RemoteEvent]:
        """All events of a remote job, oldest first."""
        return self.poll(provider_job_id, None)[1]

    def stream_chat(self, model: Any, messages: list[dict], params: Any) -> Iterator[Any]:
        """Stream a chat completion as app.engine.chat_types.ChatChunk objects (tool-call deltas included, usage
        on the last one); tools, tool_choice and response_format go to OpenAI as they are."""
        stream = self._call("chat", self.client.chat.completions.create, **chat_request(model, messages, params))
        yield from chat_chunks(_translated_stream("chat", stream, self.speaker))


@dataclass(frozen=True)
class _Speaker:
    """Who answered, for error messages: OpenAI, or a chat server of Settings.chat_servers."""

    name: str
    key_hint: str

    @property
    def opening(self) -> str:
        """The name at the start of a sentence."""
        return self.name[:1].upper() + self.name[1:]


OPENAI = _Speaker("OpenAI", "Check it on the settings page.")
SERVER_KEY_HINT = "Check the api_key of its entry in TUNEBOARD_CHAT_SERVERS."


def _translated_stream(what: str, stream: Any, speaker: _Speaker = OPENAI) -> Iterator[Any]:
    """A stream's items; a failure while reading it raises ProviderError, as a failed call does."""
    iterator = iter(stream)
    try:
        while True:
            with _translated(what, speaker):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item
    finally:
        # A stream that failed or was left half read still holds its HTTP response (and socket): let it go now.
        close = getattr(stream, "close", None)
        if close is not None:
            close()


_END = object()


@contextmanager
def _translated(what: str, speaker: _Speaker = OPENAI) -> Iterator[None]:
    """SDK exceptions raised inside, as ProviderError with plain words (calls, and reading pages and streams)."""
    import httpx
    import openai

    try:
        yield
    except openai.AuthenticationError as exc:
        raise ProviderError(
            f"{speaker.opening} rejected the API key (it is invalid or was revoked). {speaker.key_hint}",
            code="invalid_api_key",
        ) from exc
    except openai.PermissionDeniedError as exc:
        raise ProviderError(NO_PERMISSION.format(detail=error_message(exc)), code="fine_tuning_not_permitted") from exc
    except openai.RateLimitError as exc:
        raise ProviderError(
            f"{speaker.opening} is rate limiting requests ({error_message(exc)}).", code="rate_limited", retryable=True
        ) from exc
    except (openai.InternalServerError, openai.APIConnectionError) as exc:
        raise ProviderError(
            f"{speaker.opening} could not be reached or failed while trying to {what} ({error_message(exc)}).",
            code="provider_unavailable",
            retryable=True,
        ) from exc
    except openai.NotFoundError as exc:
        raise ProviderError(f"{speaker.opening} does not know it: {error_message(exc)}", code="not_found") from exc
    except openai.BadRequestError as exc:
        code, message = error_code(exc), error_message(exc)
        if code in ("model_not_available", "invalid_model") or ("fine-tun" in message and "model" in message):
            raise ProviderError(
                f"OpenAI cannot fine-tune this model: {message}", code="model_not_fine_tunable", param="model"
            ) from exc
        if what.startswith("upload") or "file" in (getattr(exc, "param", None) or "") or "file" in message:
            raise ProviderError(
                f"OpenAI rejected the training file: {message}",
                code="invalid_file",
                param=getattr(exc, "param", None),
            ) from exc
        raise ProviderError(
            f"{speaker.opening} refused to {what}: {message}",
            code=code or "invalid_request",
            param=getattr(exc, "param", None),
        ) from exc
    except openai.APIStatusError as exc:
        raise ProviderError(
            f"{speaker.opening} answered {exc.status_code} while trying to {what}: {error_message(exc)}",
            code=error_code(exc) or "provider_error",
        ) from exc
    except openai.APIError as exc:
        # Neither a status nor a connection error: OpenAI reported a failure inside a stream it had started.
        raise ProviderError(
            f"{speaker.opening} failed while trying to {what} ({error_message(exc)}).",
            code="provider_unavailable",
            retryable=True,
        ) from exc
    except httpx.HTTPError as exc:
        # The SDK wraps errors of the requests it makes, not those of reading a stream's body afterwards.
        raise ProviderError(
            f"The connection to {speaker.name} broke while trying to {what} ({exc}).",
            code="provider_unavailable",
            retryable=True,
        ) from exc
