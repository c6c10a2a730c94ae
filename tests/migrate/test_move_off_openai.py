"""Acceptance: the move off OpenAI end to end, through the pages, against the stand-in OpenAI server.

List the account's fine-tuned models, import its job's files, capture the fine-tuned model's answers as a golden
set, train a local replacement (the tiny model), and evaluate how well it agrees with the golden set. A worker runs
the job and the eval runs between the steps, as the embedded worker would.
"""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, col, select

from app.migrate.agreement import agreement_report
from app.tables import Dataset, EvalRun, EvalRunStatus, Example, Job, JobStatus, TunedModel
from app.worker.loop import Worker
from tests.migrate.conftest import connect
from tests.support.fake_openai_account import QUESTIONS, canned_answer, preload_account
from tests.support.jobs_fixtures import TINY, settings, tiny_model  # noqa: F401

pytestmark = pytest.mark.slow


def test_a_fine_tuned_openai_model_is_replaced_by_a_local_one_and_their_agreement_measured(
    app, client, session, settings, engine, fake
):
    job = preload_account(fake.state)
    tuned = job["fine_tuned_model"]
    connect(session, settings, fake)
    worker = Worker(settings, engine, providers=["local"], chat_engine=app.state.chat_engine)

    # 1–2. The account's fine-tuned model is listed with its base and retirement; its files are imported.
    page = client.get("/migrate").text
    assert tuned in page and "gpt-4o-mini-2024-07-18" in page and "2027-01-14" in page
    imported = client.post("/migrate/import", data={"job_id": job["id"]})
    assert imported.status_code == 200 and imported.text.count("No line was rejected.") == 2
    training, validation = session.exec(select(Dataset).order_by(col(Dataset.id))).all()
    assert f"file {job['training_file']}" in training.description and tuned in training.description

    # 3. The OpenAI model answers the validation prompts (through the provider, from the stand-in): a golden set.
    assert re.search(rf'<option value="{validation.id}" selected>', client.get("/migrate").text)
    answer = client.post("/migrate/capture", data={"model": tuned, "dataset_id": validation.id}, follow_redirects=False)
    assert answer.status_code == 303
    worker.run(once=True)
    session.expire_all()
    capture = session.exec(select(EvalRun).where(EvalRun.purpose == "capture")).one()
    assert capture.status == EvalRunStatus.completed, capture.error
    golden = session.get(Dataset, capture.output_dataset_id)
    assert tuned in golden.description and capture.id in golden.description
    answers = session.exec(select(Example).where(Example.dataset_id == golden.id).order_by(col(Example.position)))
    assert [e.messages[-1]["content"] for e in answers] == [canned_answer(q) for q in QUESTIONS[12:]]
    assert sum(r.endswith("/chat/completions") for r in fake.state.requests) == 3
    assert f'href="/datasets/{golden.id}"' in client.get("/migrate/captures").text

    # 4. A local job on the imported training file, validated on the imported validation file.
    answer = client.post(
        "/migrate/train",
        data={"dataset_id": training.id, "validation_dataset_id": validation.id, "model": TINY, "suffix": "support"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    worker.run(once=True)
    session.expire_all()
    local = session.exec(select(Job).where(Job.provider == "local")).one()
    assert local.status == JobStatus.succeeded, local.error
    replacement = session.get(TunedModel, local.fine_tuned_model)
    assert replacement is not None and replacement.provider == "local"

    # 5. The replacement answers the golden set's prompts; exact match, similarity and a judge (the tiny model).
    page = client.get("/migrate").text
    assert f'<option value="{golden.id}" selected>' in page and f'<option value="{replacement.id}" selected>' in page
    answer = client.post(
        "/migrate/compare",
        data={"dataset_id": golden.id, "model": replacement.id, "judge_model": TINY},
        follow_redirects=False,
    )
    run_id = answer.headers["location"].rsplit("/", 1)[1]
    worker.run(once=True)
    with Session(engine) as fresh:
        report = agreement_report(fresh, run_id)
        assert report.done and report.run.status == EvalRunStatus.completed, report.run.error
        assert report.golden.id == golden.id and report.run.model == replacement.id
        assert report.exact.n == 3 and report.similarity.n == 3 and report.judge is not None
        assert report.n_disagreements == 3 - round(report.exact.value * 3)
        assert {d.reference for d in report.disagreements} <= {canned_answer(q) for q in QUESTIONS[12:]}
    html = client.get(f"/migrate/agreement/{run_id}").text
    assert "Exact match" in html and "Judge agrees" in html and 'hx-trigger="every 2s"' not in html
