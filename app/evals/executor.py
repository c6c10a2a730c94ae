"""Run one claimed eval run: answer its frozen items, grade each answer, write each item as it is done.

Items already written (an earlier attempt) are skipped, so a run stopped by a shutdown resumes where it was. Each
item is one short transaction, conditional on the run still being this worker's (app/evals/queue.py); the run's
counts are written with it, so pages read progress from the run row alone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.config import Settings
from app.datasets.datasets import delete_dataset
from app.engine.inference import ChatEngine
from app.errors import DomainError
from app.evals.answering import Answer, Answerer, Judges
from app.evals.capture import capture_dataset
from app.evals.graders import GraderResult, grade, make_sample
from app.evals.items import load_items
from app.evals.queue import MAX_ATTEMPTS, cancel_requested, finish_run, owned
from app.evals.sources import chat_params, input_messages_for
from app.jobs.model_catalog import resolve_model
from app.tables import Eval, EvalRun, EvalRunItem, EvalRunStatus
from app.tables.common import utcnow
from app.tables.db import session_scope

log = logging.getLogger("tuneboard.evals")

CANCEL_POLL_SECONDS = 0.5  # how stale a cancel request read from the database may be while generating
CHUNK = 256  # items handed to the generator at once: bounds what a stop throws away and what is held in memory


class RunLost(Exception):
    """The run is no longer this worker's (taken over, or deleted): stop without writing."""


@dataclass
class Tally:
    """The run's counts as written with each item: result_counts, per-grader results, token usage."""

    criteria: list[str]
    passed: int = 0
    failed: int = 0
    errored: int = 0
    graders: dict[str, list[int]] = field(default_factory=dict)  # name -> [passed, failed]
    usage: dict[str, int] = field(default_factory=dict)

    def add(self, status: str, results: list[dict[str, Any]], usage: dict[str, Any]) -> None:
        """Count one written item."""
        if status == "pass":
            self.passed += 1
        elif status == "fail":
            self.failed += 1
        else:
            self.errored += 1
        for result in results:
            if result.get("error"):
                continue
            counts = self.graders.setdefault(str(result.get("name", "")), [0, 0])
            counts[0 if result.get("passed") else 1] += 1
        self.usage["invocation_count"] = self.usage.get("invocation_count", 0) + (1 if usage else 0)
        for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens"):
            self.usage[key] = self.usage.get(key, 0) + int(usage.get(key) or 0)

    @property
    def done(self) -> int:
        """Items written."""
        return self.passed + self.failed + self.errored

    def values(self, model: str, judges: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
        """The run columns these counts fill."""
        # One entry a model: a model that also judges has its judging counted in with its answers.
        totals: dict[str, dict[str, int]] = {model: dict(self.usage)} if self.usage else {}
        for name, used in (judges or {}).items():
            into = totals.setdefault(name, {})
            for key, value in used.items():
                into[key] = into.get(key, 0) + value
        per_model = [{"model_name": name, **_usage_shape(used)} for name, used in totals.items()]
        return {
            "n_done": self.passed + self.failed + self.errored,
            "result_counts": {
                "total": self.passed + self.failed + self.errored,
                "errored": self.errored,
                "failed": self.failed,
                "passed": self.passed,
            },
            "per_testing_criteria_results": [
                {
                    "testing_criteria": name,
                    "passed": self.graders.get(name, [0, 0])[0],
                    "failed": self.graders.get(name, [0, 0])[1],
                }
                for name in self.criteria
            ],
            "per_model_usage": per_model,
        }


def _usage_shape(used: dict[str, int]) -> dict[str, int]:
    prompt, completion = int(used.get("prompt_tokens", 0)), int(used.get("completion_tokens", 0))
    return {
        "invocation_count": int(used.get("invocation_count", 0)),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cached_tokens": int(used.get("cached_tokens", 0)),
    }


def item_status(sample_error: Any, results: list[dict[str, Any]]) -> str:
    """error when there is no answer or a grader could not grade; pass when every grader passed; else fail."""
    if sample_error or any(r.get("error") for r in results):
        return "error"
    return "pass" if all(r.get("passed") for r in results) else "fail"


@dataclass
class _Run:
    """What the executor reads of a run once, at the start."""

    id: str
    eval_id: str
    model: str
    purpose: str
    data_source: dict[str, Any]
    criteria: list[dict[str, Any]]
    attempts: int


class _Stop:
    """should_stop for the generator: the worker's own reasons, or a cancel request (read at most every 0.5 s)."""

    def __init__(self, engine: Engine, run_id: str, should_stop: Callable[[], bool]):
        self.engine, self.run_id, self.should_stop = engine, run_id, should_stop
        self.cancelled = False
        self._next_read = 0.0

    def cancel(self) -> bool:
        """Whether the run was asked to cancel (read now)."""
        self.cancelled = self.cancelled or cancel_requested(self.engine, self.run_id)
        self._next_read = time.monotonic() + CANCEL_POLL_SECONDS
        return self.cancelled

    def __call__(self) -> bool:
        if self.should_stop() or self.cancelled:
            return True
        if time.monotonic() >= self._next_read:
            return self.cancel()
        return False


def _load(engine: Engine, run_id: str, worker_id: str) -> tuple[_Run, set[int], Tally] | None:
    """The run (None when it is not this worker's), the indexes already written and their counts."""
    with Session(engine) as session:
        run = session.exec(select(EvalRun).where(*owned(run_id, worker_id))).first()
        if run is None:
            return None
        row = session.get(Eval, run.eval_id)
        criteria = list(row.testing_criteria or []) if row is not None else []
        tally = Tally([str(c.get("name", "")) for c in criteria])
        done: set[int] = set()
        query = select(EvalRunItem.item_index, EvalRunItem.status, EvalRunItem.results, EvalRunItem.sample).where(
            col(EvalRunItem.run_id) == run_id
        )
        for index, status, results, sample in session.exec(query):
            done.add(index)
            tally.add(status, results or [], (sample or {}).get("usage") or {})
        info = _Run(run.id, run.eval_id, run.model, run.purpose, dict(run.data_source or {}), criteria, run.attempts)
    return info, done, tally


def _write_item(engine: Engine, run: _Run, worker_id: str, row: EvalRunItem, values: dict[str, Any]) -> bool:
    """Insert one item and the run's new counts in one transaction; whether a cancel was asked meanwhile.

    RunLost when the run is no longer this worker's."""
    try:
        with session_scope(engine) as session:
            session.add(row)
            session.flush()
            result = session.exec(
                update(EvalRun).where(*owned(run.id, worker_id)).values(**values, heartbeat_at=utcnow())
            )
            if not result.rowcount:
                raise RunLost(run.id)
            cancel = session.exec(select(col(EvalRun.cancel_requested)).where(col(EvalRun.id) == run.id)).first()
    except IntegrityError as exc:  # the item is already written (or the run deleted): someone else has the run
        raise RunLost(run.id) from exc
    return bool(cancel)


def run_eval(
    settings: Settings,
    engine: Engine,
    chat_engine: ChatEngine,
    run_id: str,
    worker_id: str,
    should_stop: Callable[[], bool],
    *,
    provider_options: dict[str, dict[str, Any]] | None = None,
) -> EvalRunStatus | None:
    """Run a claimed run to its end: its final status, or None when it stopped early (the worker shuts down, or
    lost the run) — then the caller releases it and a later attempt resumes after the items written."""
    loaded = _load(engine, run_id, worker_id)
    if loaded is None:
        return None
    run, done, tally = loaded
    if run.attempts > MAX_ATTEMPTS:  # its worker died this often while running it: something kills it
        message = (
            f"The run was interrupted {run.attempts - 1} times (its worker stopped) and was given up. Run it again."
        )
        return _fail(engine, run, worker_id, "interrupted", message)
    try:
        items = load_items(settings, run.eval_id, run.id)
        with Session(engine) as session:
            model = resolve_model(session, settings, run.model)
    except DomainError as exc:
        return _fail(engine, run, worker_id, exc.code, exc.message)
    answerer = Answerer(settings, engine, chat_engine, model, provider_options)
    judges = Judges(settings, engine, chat_engine, provider_options)
    stop = _Stop(engine, run.id, should_stop)
    try:
        answerer.warm_up()
        _answer_all(engine, run, worker_id, items, done, tally, answerer, judges, stop)
    except RunLost:
        log.warning("worker %s lost eval run %s", worker_id, run.id)
        return None
    except DomainError as exc:
        return _fail(engine, run, worker_id, exc.code, exc.message)
    except Exception as exc:
        log.exception("eval run %s crashed", run.id)
        return _fail(engine, run, worker_id, "internal_error", f"Tuneboard failed to run the eval: {exc}")
    finally:
        answerer.close()
        judges.close()
    if tally.done < len(items):
        if stop.cancelled or stop.cancel():
            ended = finish_run(engine, run.id, worker_id, EvalRunStatus.canceled)
            return EvalRunStatus.canceled if ended else None
        if should_stop():
            return None  # stopped early: the caller hands the run back
        missing = len(items) - tally.done
        return _fail(engine, run, worker_id, "internal_error", f"{missing} items got no answer from the generator.")
    return _complete(settings, engine, run, worker_id, tally)


def _fail(engine: Engine, run: _Run, worker_id: str, code: str, message: str) -> EvalRunStatus | None:
    ended = finish_run(engine, run.id, worker_id, EvalRunStatus.failed, error={"code": code, "message": message})
    return EvalRunStatus.failed if ended else None


def _complete(settings: Settings, engine: Engine, run: _Run, worker_id: str, tally: Tally) -> EvalRunStatus | None:
    dataset_id = None
    if run.purpose == "capture":
        with Session(engine, expire_on_commit=False) as session:
            dataset_id = capture_dataset(session, settings, run.id)
    ended = finish_run(engine, run.id, worker_id, EvalRunStatus.completed, output_dataset_id=dataset_id)
    if not ended and dataset_id is not None:
        with Session(engine) as session:
            delete_dataset(session, dataset_id)  # the run was lost meanwhile: its new owner captures again
    return EvalRunStatus.completed if ended else None


class _Recorder:
    """Grades an answer and writes its item with the run's new counts."""

    def __init__(
        self,
        engine: Engine,
        run: _Run,
        worker_id: str,
        items: list[dict[str, Any]],
        tally: Tally,
        judges: Judges,
        stop: _Stop,
    ):
        self.engine, self.run, self.worker_id = engine, run, worker_id
        self.items, self.tally, self.judges, self.stop = items, tally, judges, stop
        self.params = chat_params(run.data_source)

    def record(self, index: int, messages: list[dict[str, Any]], answer: Answer) -> None:
        """Grade one answer (or record why there is none) and write the item."""
        item, params = self.items[index], self.params
        error = {"code": answer.error_code or "model_failed", "message": answer.error} if answer.error else None
        usage: dict[str, Any] = {}
        results: list[dict[str, Any]] = []
        if error is None:
            total = answer.prompt_tokens + answer.completion_tokens
            usage = {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": total,
                "cached_tokens": 0,
            }
            graded = make_sample(answer.text, answer.tool_calls, finish_reason=answer.finish_reason)
            results = [_grade(config, item, graded, self.judges) for config in self.run.criteria]
        status = item_status(error, results)
        sample = {
            "input": messages,
            "output": [] if error else [_output_message(answer)],
            "finish_reason": answer.finish_reason,
            "model": self.run.model,
            "usage": usage,
            "error": error,
            "temperature": params.temperature,
            "max_completion_tokens": params.max_tokens,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        self.tally.add(status, results, usage)
        row = EvalRunItem(
            run_id=self.run.id, item_index=index, item=item, sample=sample, results=results, status=status
        )
        values = self.tally.values(self.run.model, self.judges.usage)
        if _write_item(self.engine, self.run, self.worker_id, row, values):
            self.stop.cancelled = True

    def reporter(self, prompts: list[tuple[int, list[dict[str, Any]]]]) -> Callable[[int, Answer], None]:
        """on_answer for a list of (item index, messages): the generator reports by position in that list."""

        def on_answer(position: int, answer: Answer) -> None:
            index, messages = prompts[position]
            self.record(index, messages, answer)

        return on_answer


def _answer_all(
    engine: Engine,
    run: _Run,
    worker_id: str,
    items: list[dict[str, Any]],
    done: set[int],
    tally: Tally,
    answerer: Answerer,
    judges: Judges,
    stop: _Stop,
) -> None:
    """Answer, grade and write every item not yet written, a chunk at a time, until done or told to stop."""
    input_spec = run.data_source.get("input_messages") or {}
    recorder = _Recorder(engine, run, worker_id, items, tally, judges, stop)
    pending = [i for i in range(len(items)) if i not in done]
    for start in range(0, len(pending), CHUNK):
        if stop():
            return
        prompts: list[tuple[int, list[dict[str, Any]]]] = []
        for index in pending[start : start + CHUNK]:
            try:
                messages = input_messages_for(input_spec, items[index])
            except DomainError as exc:
                recorder.record(index, [], Answer("", "error", error=exc.message, error_code="invalid_input"))
                continue
            if not messages:
                no_input = Answer("", "error", error="The item gives the model no message.", error_code="invalid_input")
                recorder.record(index, [], no_input)
                continue
            prompts.append((index, messages))
        # Items that bring tools (a function-calling dataset's) are offered them, unless the run names its own tools.
        groups: dict[str, list[tuple[int, list[dict[str, Any]]]]] = {}
        for index, messages in prompts:
            groups.setdefault(json.dumps(items[index].get("tools") or None, sort_keys=True), []).append(
                (index, messages)
            )
        for key, group in groups.items():
            tools = json.loads(key)
            params = replace(recorder.params, tools=tools) if tools and not recorder.params.tools else recorder.params
            answerer.answer_many([m for _, m in group], params, stop, recorder.reporter(group))


def _grade(config: dict[str, Any], item: dict[str, Any], sample: dict[str, Any], judges: Judges) -> dict[str, Any]:
    try:
        result = grade(config, item, sample, judges.bound(config))
    except Exception as exc:  # a grader's bug is this item's error, not the run's
        log.exception("grader %s failed", config.get("name"))
        result = GraderResult(str(config.get("name", "")), str(config.get("type", "")), 0.0, False, str(exc))
    return result.to_dict()


def _output_message(answer: Answer) -> dict[str, Any]:
    """The assistant message of a sample's output, with its tool calls when it made any."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    return message
