"""A small stand-in for OpenAI's files / fine-tuning / models / chat API, following its documented shapes.

Served by a real uvicorn (tests.conftest.LiveServer) so the real SDK talks HTTP to it. Each retrieve of a job
moves it one stage on: validating_files → running (events, a checkpoint) → succeeded (or failed). Switches:
`fail_times(status, n)` answers the next n requests with 429/500, `deny_fine_tuning`, `fail_jobs`,
`not_fine_tunable` (a set of model names), `chat_fails_after` (words a chat streams before an error). A chat with
`tools` calls the named (or first) function with {"query": <last user text>}; `chats` keeps each chat's body.
The account side (models, files to read back, a preloaded account) is in tests/support/fake_openai_account.py.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.support.fake_openai_account import add_account_routes, canned_answer, fine_tuned_models, last_user_text

KEY = "sk-test-fake-openai-key"


@dataclass
class FakeOpenAIState:
    """Everything the stand-in remembers, and the switches tests flip."""

    files: dict[str, dict] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    events: dict[str, list[dict]] = field(default_factory=dict)
    checkpoints: dict[str, list[dict]] = field(default_factory=dict)
    deleted_models: list[str] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    deny_fine_tuning: bool = False
    fail_jobs: bool = False
    hold_running: bool = False
    chat_fails_after: int | None = None  # a chat stream reports an error after this many words, then stops
    not_fine_tunable: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    chats: list[dict] = field(default_factory=list)
    counter: Any = field(default_factory=lambda: itertools.count(1))

    def fail_times(self, status: int, n: int) -> None:
        """Answer the next n requests with this error status."""
        self.failures.extend([status] * n)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-fake{next(self.counter):06d}"


def error(
    status: int,
    message: str,
    code: str | None = None,
    param: str | None = None,
    type_: str | None = None,
    headers: dict | None = None,
) -> JSONResponse:
    kind = type_ or {401: "invalid_request_error", 403: "invalid_request_error", 429: "requests"}.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status, headers=headers
    )


def page(items: list[dict], after: str | None, limit: int) -> dict:
    """OpenAI's cursor page: items after the one with id `after`, `limit` of them, has_more."""
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    chunk = items[:limit]
    return {
        "object": "list",
        "data": chunk,
        "has_more": len(items) > limit,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
    }


def make_app(state: FakeOpenAIState) -> FastAPI:
    """The ASGI app over a state object."""
    app = FastAPI()

    @app.middleware("http")
    async def gate(request: Request, call_next):
        state.requests.append(f"{request.method} {request.url.path}")
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return error(
                401,
                "Incorrect API key provided: sk-wr***. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        if state.failures:
            status = state.failures.pop(0)
            if status == 429:
                return error(
                    429, "Rate limit reached for requests", code="rate_limit_exceeded", headers={"retry-after-ms": "5"}
                )
            return error(
                status, "The server had an error while processing your request.", headers={"retry-after-ms": "5"}
            )
        return await call_next(request)

    @app.post("/v1/files")
    async def upload(request: Request):
        async with request.form() as form:
            upload = form["file"]
            data = await upload.read()
            purpose = form.get("purpose")
        fid = state.new_id("file")
        state.contents[fid] = data
        state.files[fid] = {
            "id": fid,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": upload.filename,
            "purpose": purpose,
            "status": "processed",
        }
        return state.files[fid]

    @app.post("/v1/fine_tuning/jobs")
    async def create_job(request: Request):
        body = await request.json()
        if state.deny_fine_tuning:
            return error(
                403, "You are not allowed to create fine-tuning jobs for this organization.", code="permission_denied"
            )
        if body["model"] in state.not_fine_tunable:
            return error(
                400,
                f"Model {body['model']} is not available for fine-tuning or does not exist.",
                code="model_not_available",
                param="model",
            )
        lines = [x for x in state.contents.get(body["training_file"], b"").splitlines() if x.strip()]
        if len(lines) < 10:
            return error(
                400,
                f"Training file has {len(lines)} example(s), but must have at least 10 examples",
                code="invalid_n_examples",
                param="training_file",
            )
        method = body.get("method") or {"type": "supervised"}
        kind = method.get("type", "supervised")
        if kind == "dpo" and b"preferred_output" not in lines[0]:
            return error(
                400,
                "Training file has an invalid format for the DPO method: each line needs input, "
                "preferred_output and non_preferred_output.",
                code="invalid_file_format",
                param="training_file",
            )
        jid = state.new_id("ftjob")
        hyper = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
        if kind == "dpo":
            hyper["beta"] = 0.1
        hyper.update((method.get(kind) or {}).get("hyperparameters", {}))
        state.jobs[jid] = {
            "id": jid,
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "model": body["model"],
            "status": "validating_files",
            "fine_tuned_model": None,
            "finished_at": None,
            "error": None,
            "organization_id": "org-fake",
            "result_files": [],
            "trained_tokens": None,
            "hyperparameters": hyper,
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "seed": body.get("seed", 42),
            "suffix": body.get("suffix"),
            "metadata": body.get("metadata"),
            "estimated_finish": None,
            "integrations": [],
            "method": {"type": kind, kind: {"hyperparameters": hyper}},
        }
        state.events[jid] = []
        state.checkpoints[jid] = []
        _event(state, jid, f"Created fine-tuning job: {jid}")
        return state.jobs[jid]

    @app.get("/v1/fine_tuning/jobs")
    async def list_jobs(after: str | None = None, limit: int = 20):
        # A job marked `_other_project` is not listed (its model still is), as with a key scoped to one project.
        listed = [j for j in state.jobs.values() if not j.get("_other_project")]
        return page(sorted(listed, key=lambda j: j["id"], reverse=True), after, limit)

    @app.get("/v1/fine_tuning/jobs/{jid}")
    async def retrieve(jid: str):
        if jid not in state.jobs:
            return error(404, f"No such fine-tuning job: {jid}", code="fine_tune_not_found", param="id")
        _advance(state, jid)
        return state.jobs[jid]

    @app.post("/v1/fine_tuning/jobs/{jid}/cancel")
    async def cancel(jid: str):
        job = state.jobs[jid]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return error(400, f"Job has already completed: {jid}", code="invalid_request")
        job["status"] = "cancelled"
        _event(state, jid, "Job cancelled")
        return job

    @app.get("/v1/fine_tuning/jobs/{jid}/events")
    async def events(jid: str, after: str | None = None, limit: int = 20):
        return page(list(reversed(state.events[jid])), after, limit)

    @app.get("/v1/fine_tuning/jobs/{jid}/checkpoints")
    async def checkpoints(jid: str, after: str | None = None, limit: int = 10):
        return page(list(reversed(state.checkpoints[jid])), after, limit)

    @app.delete("/v1/models/{model:path}")
    async def delete_model(model: str):
        state.deleted_models.append(model)
        return {"id": model, "object": "model", "deleted": True}

    add_account_routes(app, state, error)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state.chats.append(body)
        if body.get("tools"):
            return _tool_call(body)
        words = ["Hello", " from", " ", body["model"]]
        if body["model"] in fine_tuned_models(state):
            # A fine-tuned model of the account answers what its training file taught it (known in advance).
            answer = canned_answer(last_user_text(body["messages"]))
            words = [answer[i : i + 8] for i in range(0, len(answer), 8)]
        usage = {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(words)}
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": usage,
            }

        def stream():
            for index, word in enumerate(words):
                if index == state.chat_fails_after:
                    # How OpenAI reports a failure once a stream has started: an `error` object as the data.
                    failure = {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                    }
                    yield f"data: {json.dumps({'error': failure})}\n\n"
                    return
                chunk = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            last = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield f"data: {json.dumps(last)}\n\n"
            tail = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(tail)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


def _tool_call(body: dict):
    """A chat with tools answered with one call, as OpenAI streams it: id and name first, arguments in two parts."""
    choice = body.get("tool_choice")
    name = choice["function"]["name"] if isinstance(choice, dict) else body["tools"][0]["function"]["name"]
    arguments = json.dumps({"query": last_user_text(body["messages"])})
    call = {"id": "call_fake1", "type": "function", "function": {"name": name, "arguments": arguments}}
    if not body.get("stream"):
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        choices = [{"index": 0, "message": message, "finish_reason": "tool_calls"}]
        return {
            "id": "chatcmpl-2",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": choices,
        }
    half = len(arguments) // 2
    deltas = [
        {"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call, "function": {"name": name}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[:half]}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]},
        {},
    ]
    head = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
    events = [
        {**head, "choices": [{"index": 0, "delta": d, "finish_reason": None if d else "tool_calls"}]} for d in deltas
    ]
    usage = {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15}
    events.append({**head, "choices": [], "usage": usage})
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return StreamingResponse(iter([text]), media_type="text/event-stream")


def _event(
    state: FakeOpenAIState, jid: str, message: str, level: str = "info", type_: str = "message", data: Any = None
) -> None:
    state.events[jid].append(
        {
            "id": state.new_id("ftevent"),
            "object": "fine_tuning.job.event",
            "created_at": int(time.time()),
            "level": level,
            "message": message,
            "type": type_,
            "data": data,
        }
    )


def _advance(state: FakeOpenAIState, jid: str) -> None:
    job = state.jobs[jid]
    if job["status"] == "validating_files":
        job["status"] = "running"
        _event(state, jid, "Validating training file")
        _event(state, jid, "Fine-tuning job started")
        for step in (1, 2, 3):
            _event(
                state,
                jid,
                f"Step {step}/3: training loss=0.{9 - step}",
                type_="metrics",
                data={"step": step, "total_steps": 3, "train_loss": 0.9 - step / 10},
            )
    elif job["status"] == "running" and state.hold_running:
        return
    elif job["status"] == "running" and state.fail_jobs:
        job["status"], job["finished_at"] = "failed", int(time.time())
        job["error"] = {
            "code": "invalid_training_file",
            "param": "training_file",
            "message": "The job failed due to an invalid training file.",
        }
        _event(state, jid, job["error"]["message"], level="error")
    elif job["status"] == "running":
        name = f"ft:{job['model']}:org-fake:{job['suffix'] or ''}:{jid[-6:]}"
        state.checkpoints[jid].append(
            {
                "id": state.new_id("ftckpt"),
                "object": "fine_tuning.job.checkpoint",
                "created_at": int(time.time()),
                "fine_tuned_model_checkpoint": f"{name}:ckpt-step-3",
                "fine_tuning_job_id": jid,
                "step_number": 3,
                "metrics": {"step": 3, "train_loss": 0.6},
            }
        )
        job.update(
            status="succeeded",
            fine_tuned_model=name,
            finished_at=int(time.time()),
            trained_tokens=1234,
            result_files=["file-result"],
        )
        _event(state, jid, f"New fine-tuned model created: {name}")
        _event(state, jid, "The job has successfully completed")
