"""The model list's measured speeds: training tokens/s from the newest finished local job of each base model, chat
tokens/s from the chat engine's newest long-enough reply; "not measured yet" before either."""

from __future__ import annotations

from sqlmodel import Session

from app.engine.throughput import ChatSpeeds
from app.tables import Job, JobEvent, JobStatus

SMOL = "SmolLM2-135M-Instruct"


def _finished_job(engine, data: dict, *, status=JobStatus.succeeded, provider="local", attempts=1, tokens=9000):
    with Session(engine) as session:
        job = Job(model=SMOL, provider=provider, status=status, attempts=attempts, trained_tokens=tokens)
        session.add(job)
        session.commit()
        session.add(JobEvent(job_id=job.id, message=f"New fine-tuned model created: ft:{SMOL}::{job.id}", data=data))
        session.commit()
        return job.id


def _smol(api) -> dict:
    return next(m for m in api.get("/api/base-models").json()["data"] if m["name"] == SMOL)


def test_speeds_are_not_measured_until_a_job_finishes_and_a_reply_is_decoded(api, client, settings, engine):
    before = _smol(api)
    assert before["training_tokens_per_second"] is None and before["chat_tokens_per_second"] is None
    assert client.get("/models/base").text.count("not measured yet") >= 2

    _finished_job(engine, {"seconds": 3.0})  # older trainer: billed tokens over seconds (one attempt)
    assert _smol(api)["training_tokens_per_second"] == 3000.0
    _finished_job(engine, {"seconds": 1.0, "tokens_per_second": 20.0}, status=JobStatus.failed)  # not finished well
    _finished_job(engine, {"seconds": 1.0, "tokens_per_second": 30.0}, provider="openai")  # not this machine
    _finished_job(engine, {"seconds": 10.0}, attempts=2)  # resumed: its seconds cover the last attempt only
    assert _smol(api)["training_tokens_per_second"] == 3000.0
    newest = _finished_job(engine, {"seconds": 2.0, "tokens_per_second": 1234.0, "processes": 2, "device": "cpu"})
    ChatSpeeds(settings.data_dir).record(SMOL, 10, 0.1)  # too short a reply to tell
    assert _smol(api)["chat_tokens_per_second"] is None
    ChatSpeeds(settings.data_dir).record(SMOL, 40, 0.25)

    after = _smol(api)
    assert after["training_tokens_per_second"] == 1234.0 and after["chat_tokens_per_second"] == 160.0
    assert after["throughput_measured_on"] == {
        "training_job": newest,
        "training_processes": 2,
        "training_device": "cpu",
    }
    row = client.get("/models/base").text.split(f'id="base-{SMOL}"')[1].split("</tr>")[0]
    assert "Training: 1,234 tokens/s" in row and "(2 processes, CPU)" in row and "Chat: 160 tokens/s" in row
