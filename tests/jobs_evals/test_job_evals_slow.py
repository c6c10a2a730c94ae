"""A local tiny-model job launched from the form with an eval attached: each checkpoint gets one run, the panel
shows their scores, and the best checkpoint becomes the tuned model and answers chat."""

from __future__ import annotations

import json
import re

import pytest
from sqlmodel import Session

from app.engine.chat_types import ChatParams
from app.evals.runs import list_runs_for_job
from app.playground.chat import stream_chat
from app.tables import EvalRunStatus, Job, TunedModel
from tests.support.tiny_jobs import tiny_model, tiny_worker
from tests.support.waiting import wait_for

__all__ = ["tiny_model", "tiny_worker"]

pytestmark = pytest.mark.slow


def test_each_checkpoint_is_evaluated_and_the_best_becomes_the_tuned_model(tiny_worker):
    settings, app = tiny_worker.settings, tiny_worker.app
    client = tiny_worker.browser()
    try:
        dataset = tiny_worker.dataset(n_train=12, n_validation=3)
        form = {"dataset_id": dataset.id, "suffix": "evald", "seed": "1", "n_epochs": "2", "batch_size": "4"}
        launched = client.post("/jobs/new", data=dict(form, eval_choice="validation"), follow_redirects=False)
        assert launched.status_code == 303, launched.text
        job_id = launched.headers["location"].rsplit("/", 1)[-1]

        def all_evaluated() -> bool:
            with Session(app.state.engine) as s:
                job = s.get(Job, job_id)
                runs = list_runs_for_job(s, job_id)
                if job is not None and job.status.is_terminal and job.status != "succeeded":
                    raise AssertionError(f"the job ended {job.status}: {job.error}")
                return bool(job and job.status == "succeeded" and len(runs) == 2) and all(
                    r.status.is_terminal for r in runs
                )

        wait_for(all_evaluated, 300, "the job and both checkpoint runs to end")
        with Session(app.state.engine) as session:
            runs = list_runs_for_job(session, job_id)
            assert [r.status for r in runs] == [EvalRunStatus.completed] * 2
            assert sorted(r.name for r in runs) == ["step 3", "step 6"] and all(r.n_done == 3 for r in runs)

        html = client.get(f"/jobs/{job_id}/evals").text
        assert "hx-trigger" not in html  # everything has ended: the panel stops refreshing
        assert html.count('<span class="badge succeeded">completed</span>') == 2
        assert html.count('<td class="num score"><span class="rate">') == 2
        chart = json.loads(re.search(r"data-points='([^']*)'", html).group(1))
        assert [p["step"] for p in chart] == [3, 6] and all(0 <= p["s0"] <= 1 for p in chart)
        best = re.search(r'<tr id="ckpt-(\d+)" class="best"', html)
        assert best, html
        promote = re.search(r'hx-post="(/jobs/[^"]+/promote)"', html)
        assert promote and "Use the best checkpoint as the tuned model" in html

        assert client.post(promote.group(1), follow_redirects=False).status_code == 303
        with Session(app.state.engine) as session:
            job = session.get(Job, job_id)
            model = session.get(TunedModel, job.fine_tuned_model)
            assert model.path.endswith(f"checkpoints/step-{best.group(1)}")
            chunks = list(
                stream_chat(
                    session,
                    settings,
                    app.state.chat_engine,
                    model.id,
                    [{"role": "user", "content": "What is 2 plus 2?"}],
                    ChatParams(max_tokens=4, temperature=0),
                )
            )
            assert chunks[-1].finish_reason in ("stop", "length") and chunks[-1].usage["prompt_tokens"] > 0
    finally:
        client.close()
