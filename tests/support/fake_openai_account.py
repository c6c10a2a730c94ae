"""The stand-in's account side: models, file retrieval and content, and an "existing account" to preload.

OpenAI's documented shapes: GET /v1/models lists base models (owned_by "system") and the fine-tuned models of
succeeded jobs (owned_by the organisation); GET /v1/files/{id} is the file object; GET /v1/files/{id}/content is
the file's bytes. `preload_account` adds a job made elsewhere (succeeded, with its fine-tuned model and a training
and validation file), as a user who fine-tuned on OpenAI before coming to Tuneboard has. A fine-tuned model of
the stand-in answers a chat with `canned_answer(last user message)`, so what it says is known in advance.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import Response

if TYPE_CHECKING:
    from tests.support.fake_openai import FakeOpenAIState

BASE_MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14")
ORG = "org-fake"
QUESTIONS = (
    "What is the capital of France?",
    "How many legs has a spider?",
    "What colour is the sky?",
    "Which planet is the largest?",
    "What is water made of?",
    "Who wrote Hamlet?",
    "What is the boiling point of water?",
    "How many days are in a week?",
    "What do bees make?",
    "Which ocean is the biggest?",
    "What is the opposite of hot?",
    "How many continents are there?",
    "What gas do plants take in?",
    "What is frozen water called?",
    "Which animal barks?",
)


def canned_answer(prompt: str) -> str:
    """What a stand-in fine-tuned model answers to a prompt (the training files hold the same answers)."""
    return f"Arr, {prompt.strip().rstrip('?.!').lower()}!"


def last_user_text(messages: list[dict]) -> str:
    """The text of the last user message of a chat request."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


def chat_record(question: str) -> dict:
    """One training line as a fine-tuned model of the stand-in was trained on."""
    return {
        "messages": [
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": canned_answer(question)},
        ]
    }


def jsonl(records: list[Any]) -> bytes:
    """Records (dicts, or raw lines as str) as JSONL bytes."""
    return b"".join((r if isinstance(r, str) else json.dumps(r)).encode() + b"\n" for r in records)


def fine_tuned_models(state: FakeOpenAIState) -> dict[str, dict]:
    """The fine-tuned model of each succeeded job, by id, as model objects."""
    return {
        job["fine_tuned_model"]: {
            "id": job["fine_tuned_model"],
            "object": "model",
            "created": job["finished_at"] or job["created_at"],
            "owned_by": job["organization_id"],
        }
        for job in state.jobs.values()
        if job["status"] == "succeeded"
        and job["fine_tuned_model"]
        and job["fine_tuned_model"] not in state.deleted_models
    }


def add_file(state: FakeOpenAIState, filename: str, content: bytes, purpose: str = "fine-tune") -> str:
    """Store a file as an upload would; returns its id."""
    fid = state.new_id("file")
    state.contents[fid] = content
    state.files[fid] = {
        "id": fid,
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()) - 86_400,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }
    return fid


def preload_account(
    state: FakeOpenAIState,
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    suffix: str = "support",
    training: bytes | None = None,
    validation: bytes | None = None,
    with_validation: bool = True,
) -> dict:
    """Add a succeeded job made elsewhere, with its fine-tuned model and files; returns the job object."""
    training = training if training is not None else jsonl([chat_record(q) for q in QUESTIONS[:12]])
    training_id = add_file(state, f"{suffix}_train.jsonl", training)
    validation_id = None
    if with_validation:
        validation = validation if validation is not None else jsonl([chat_record(q) for q in QUESTIONS[12:]])
        validation_id = add_file(state, f"{suffix}_validation.jsonl", validation)
    jid = state.new_id("ftjob")
    hyper = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
    created = int(time.time()) - 86_000
    state.jobs[jid] = {
        "id": jid,
        "object": "fine_tuning.job",
        "created_at": created,
        "model": model,
        "status": "succeeded",
        "fine_tuned_model": f"ft:{model}:{ORG}:{suffix}:{jid[-6:]}",
        "finished_at": created + 600,
        "error": None,
        "organization_id": ORG,
        "result_files": [],
        "trained_tokens": 4321,
        "hyperparameters": hyper,
        "training_file": training_id,
        "validation_file": validation_id,
        "seed": 7,
        "suffix": suffix,
        "metadata": None,
        "estimated_finish": None,
        "integrations": [],
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
    }
    state.events[jid] = []
    state.checkpoints[jid] = []
    return state.jobs[jid]


def add_account_routes(app: FastAPI, state: FakeOpenAIState, error: Any) -> None:
    """GET /v1/models, /v1/models/{id}, /v1/files/{id} and /v1/files/{id}/content over `state`."""

    @app.get("/v1/models")
    async def list_models():
        base = [{"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"} for name in BASE_MODELS]
        return {"object": "list", "data": base + list(fine_tuned_models(state).values())}

    @app.get("/v1/models/{model:path}")
    async def retrieve_model(model: str):
        tuned = fine_tuned_models(state)
        if model in tuned:
            return tuned[model]
        if model in BASE_MODELS:
            return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
        return error(404, f"The model '{model}' does not exist", code="model_not_found", param="model")

    @app.get("/v1/files/{fid}")
    async def retrieve_file(fid: str):
        if fid not in state.files:
            return error(404, f"No such File object: {fid}", param="id")
        return state.files[fid]

    @app.get("/v1/files/{fid}/content")
    async def file_content(fid: str):
        if fid not in state.contents:
            return error(404, f"No such File object: {fid}", param="id")
        return Response(state.contents[fid], media_type="application/octet-stream")
