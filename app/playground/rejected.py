""" "Make rejected answers": a chosen model answers every usable example of a supervised dataset; the example's own
last answer becomes the preferred output and the model's the rejected one, in a preference dataset to review.

The answers are generated in the background, on a thread of the app-lifetime `RejectedAnswers` runner
(`app.state.rejected_answers`), never in the request: local models through the chat engine in batches, remote ones
a few requests at a time (`app.evals.answering.Answerer`, as eval runs answer). Pairs are written in the source's
order as their answers arrive, so the dataset fills while the page shows the progress.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import get_dataset
from app.datasets.examples import add_example
from app.datasets.limits import Limits
from app.engine.chat_types import ChatParams
from app.engine.inference import ChatEngine
from app.errors import DomainError, Invalid, NotFound
from app.evals.answering import Answer, Answerer
from app.jobs.model_catalog import resolve_model
from app.playground.conversations import PARAM_LIMITS
from app.playground.preferences import answer_output, target_dataset
from app.tables import Dataset, Example
from app.tables.common import utcnow

log = logging.getLogger("tuneboard.rejected")

KEPT_TASKS = 50  # finished tasks remembered for their pages; older ones are forgotten
MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


@dataclass(frozen=True)
class Prompt:
    """One usable example: the conversation up to its last user turn and its own last answer."""

    example_id: int
    position: int
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    preferred: list[dict[str, Any]]
    split: str | None


@dataclass
class RejectedTask:
    """One "make rejected answers" run, as its page shows it."""

    id: str
    source_id: int
    source_name: str
    target_id: int
    target_name: str
    model: str
    total: int
    skipped: int
    written: int = 0
    failed: int = 0
    status: str = "running"  # running | succeeded | failed | stopped
    message: str = ""
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> int:
        """Examples answered so far (written or failed)."""
        return self.written + self.failed

    @property
    def percent(self) -> float:
        """How far the run has got, 0-100."""
        return 100.0 * self.done / self.total if self.total else 100.0

    @property
    def running(self) -> bool:
        """Whether answers are still being made."""
        return self.status == "running"


def usable_prompts(session: Session, dataset_id: int) -> tuple[list[Prompt], int]:
    """The valid examples whose last answer follows a user turn (what a DPO input needs), in order; and how many
    examples were left out (invalid ones, or answers that follow a tool result)."""
    query = select(Example).where(col(Example.dataset_id) == dataset_id).order_by(col(Example.position))
    prompts, skipped = [], 0
    for example in session.exec(query):
        prompt = _prompt(example) if example.valid and not example.is_preference else None
        if prompt is None:
            skipped += 1
        else:
            prompts.append(prompt)
    return prompts, skipped


def _prompt(example: Example) -> Prompt | None:
    messages = [m for m in example.messages or [] if isinstance(m, dict)]
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None or last == 0 or messages[last - 1].get("role") != "user":
        return None
    given = [{k: m[k] for k in MESSAGE_KEYS if k in m} for m in messages[:last]]
    assert example.id is not None
    return Prompt(
        example.id, example.position, given, example.tools or None, answer_output(messages[last]), example.split
    )


def default_name(source: Dataset, model: str) -> str:
    """A new target dataset's name: the source's and the model's."""
    return f"{source.name} · rejected by {model}"[:200]


def chat_params(temperature: Any, max_tokens: Any) -> ChatParams:
    """The sampling of the rejected answers, checked against the playground's ranges."""
    values = {}
    for key, value in (("temperature", temperature), ("max_tokens", max_tokens)):
        low, high = PARAM_LIMITS[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise Invalid(f"{key} must be a number.", param=key) from None
        if not low <= number <= high:
            raise Invalid(f"{key} must be between {low} and {high}.", param=key)
        values[key] = number
    return ChatParams(temperature=values["temperature"], top_p=1.0, max_tokens=int(values["max_tokens"]))


def _by_tools(prompts: list[Prompt]) -> list[tuple[list[int], list[dict[str, Any]] | None]]:
    """The prompts' indices grouped by the tools their examples define (one batch of answers per group), in the
    order each group first appears: most datasets have one group."""
    groups: dict[str, tuple[list[int], list[dict[str, Any]] | None]] = {}
    for index, prompt in enumerate(prompts):
        key = json.dumps(prompt.tools, sort_keys=True)
        groups.setdefault(key, ([], prompt.tools))[0].append(index)
    return list(groups.values())


class _Writer:
    """Writes pairs in the source's order as answers arrive (a batch may end out of order)."""

    def __init__(self, engine: Engine, task: RejectedTask, prompts: list[Prompt], limits: Limits):
        self.engine, self.task, self.prompts, self.limits = engine, task, prompts, limits
        self.pending: dict[int, Answer] = {}
        self.next = 0

    def on_answer(self, index: int, answer: Answer) -> None:
        """Keep prompt `index`'s answer; write every answer that now follows the last one written."""
        self.pending[index] = answer
        ready = []
        while self.next in self.pending:
            ready.append((self.next, self.pending.pop(self.next)))
            self.next += 1
        self._write(ready)

    def reporter(self, indices: list[int]) -> Callable[[int, Answer], None]:
        """on_answer for a group of the prompts: its n-th answer is prompt indices[n]'s."""
        return lambda n, answer: self.on_answer(indices[n], answer)

    def finish(self) -> None:
        """Write what arrived after a gap that will not be filled (the run stopped)."""
        self._write(sorted(self.pending.items()))
        self.pending.clear()

    def _write(self, answers: list[tuple[int, Answer]]) -> None:
        with Session(self.engine) as session:
            for index, answer in answers:
                prompt = self.prompts[index]
                if answer.error:
                    self._failed(f"Some answers failed: {answer.error}")
                    continue
                rejected: dict[str, Any] = {"role": "assistant", "content": answer.text}
                if answer.tool_calls:
                    rejected["tool_calls"] = answer.tool_calls
                given: dict[str, Any] = {"messages": prompt.messages}
                if prompt.tools:
                    given["tools"] = prompt.tools
                record = {"input": given, "preferred_output": prompt.preferred, "non_preferred_output": [rejected]}
                note = (
                    f"rejected answer by {self.task.model} (example {prompt.position + 1} of {self.task.source_name})"
                )
                try:
                    add_example(session, self.task.target_id, record, prompt.split, note, limits=self.limits)
                except Invalid as exc:  # over the limits (a very long answer): this pair only
                    self._failed(f"A pair was not saved: {exc.message}")
                    continue
                self.task.written += 1

    def _failed(self, message: str) -> None:
        self.task.failed += 1
        self.task.message = self.task.message or message


class RejectedAnswers:
    """The app-lifetime runner: starts a run on its own thread, keeps the recent runs for their pages."""

    def __init__(self, settings: Settings, engine: Engine, chat_engine: ChatEngine):
        self.settings, self.engine, self.chat_engine = settings, engine, chat_engine
        self._tasks: OrderedDict[str, RejectedTask] = OrderedDict()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(
        self,
        session: Session,
        dataset_id: int,
        model: str,
        target: str | int | None,
        new_name: str = "",
        params: ChatParams | None = None,
    ) -> RejectedTask:
        """Check the request, make the target dataset, and start answering in the background; the run."""
        source = get_dataset(session, dataset_id)
        if source.is_preference:
            raise Invalid("This is a preference dataset already: its examples have both answers.", param="dataset_id")
        model = (model or "").strip()
        if not model:
            raise Invalid("Pick the model that writes the rejected answers.", param="model")
        resolve_model(session, self.settings, model)  # NotFound now, not on the thread
        prompts, skipped = usable_prompts(session, dataset_id)
        if not prompts:
            raise Invalid(
                "No valid example ends with an answer to a user turn: there is nothing to make rejected answers for.",
                param="dataset_id",
            )
        dataset = target_dataset(session, target, new_name or default_name(source, model))
        if dataset.id == source.id:
            raise Invalid("The pairs go to a preference dataset, not back into this one.", param="target")
        session.commit()
        assert source.id is not None and dataset.id is not None
        task = RejectedTask(
            uuid.uuid4().hex[:12], source.id, source.name, dataset.id, dataset.name, model, len(prompts), skipped
        )
        thread = threading.Thread(
            target=self._run, args=(task, prompts, params or chat_params(0.7, 256)), name=f"rejected-{task.id}"
        )
        thread.daemon = True  # stop() ends it at shutdown; a daemon never holds the process open
        with self._lock:
            self._tasks[task.id] = task
            self._threads[task.id] = thread
            self._forget_old()
        thread.start()
        return task

    def get(self, task_id: str) -> RejectedTask:
        """A run by id (NotFound once forgotten, or after a restart)."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise NotFound("No such run of “make rejected answers”: the server may have restarted since.")
        return task

    def latest_for(self, dataset_id: int) -> RejectedTask | None:
        """The newest run made from this dataset, if any is remembered."""
        with self._lock:
            found = [t for t in self._tasks.values() if t.source_id == dataset_id]
        return found[-1] if found else None

    def request_stop(self, task_id: str) -> RejectedTask:
        """Ask a run to stop: answers made so far stay written."""
        task = self.get(task_id)
        task.stop_requested.set()
        return task

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every run (the app shuts down) and wait a little for their threads."""
        with self._lock:
            tasks, threads = list(self._tasks.values()), list(self._threads.values())
        for task in tasks:
            task.stop_requested.set()
        for thread in threads:
            thread.join(timeout)

    def join(self, task_id: str, timeout: float | None = None) -> RejectedTask:
        """Wait for a run to end (tests, the CLI); the run."""
        with self._lock:
            thread = self._threads.get(task_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(task_id)

    def _forget_old(self) -> None:
        while len(self._tasks) > KEPT_TASKS:
            old = next((k for k, t in self._tasks.items() if not t.running), None)
            if old is None:
                return
            del self._tasks[old]
            self._threads.pop(old, None)

    def _run(self, task: RejectedTask, prompts: list[Prompt], params: ChatParams) -> None:
        writer = _Writer(self.engine, task, prompts, Limits.of(self.settings))
        answerer = None
        try:
            with Session(self.engine) as session:
                resolved = resolve_model(session, self.settings, task.model)
            answerer = Answerer(self.settings, self.engine, self.chat_engine, resolved)
            answerer.warm_up()
            for indices, tools in _by_tools(prompts):
                # The model is given the example's tools, so that it may call them as the preferred answer does.
                group_params = dataclasses.replace(params, tools=tools, tool_choice="auto" if tools else None)
                answerer.answer_many(
                    [prompts[i].messages for i in indices],
                    group_params,
                    task.stop_requested.is_set,
                    writer.reporter(indices),
                )
            writer.finish()
            if task.stop_requested.is_set():
                task.status = "stopped"
            elif task.written == 0 and task.failed:
                task.status = "failed"
            else:
                task.status = "succeeded"
        except DomainError as exc:
            task.status, task.message = "failed", exc.message
        except Exception as exc:
            log.exception("make rejected answers %s failed", task.id)
            task.status, task.message = "failed", f"Tuneboard failed while answering: {type(exc).__name__}: {exc}"
        finally:
            if answerer is not None:
                answerer.close()
            task.finished_at = utcnow()
