"""The job page's evaluation panel: scores per checkpoint, the best one, overfitting in plain words, live refresh."""

from __future__ import annotations

import json
import re

from app.evals.evals import create_eval
from app.evals.job_evals import DEFAULT_GRADERS, job_panel
from app.tables import EvalRunStatus, Job, JobStatus
from tests.jobs_evals.conftest import TINY, FinishedJob, add_run, finished_job, settings, tiny_model
from tests.support.builders import make_dataset

__all__ = ["finished_job", "settings", "tiny_model"]


def attach_eval(session, settings, job: Job):
    ds = make_dataset(session, n_train=12, n_validation=10)
    made = create_eval(session, settings, name="held-out", testing_criteria=DEFAULT_GRADERS, dataset_id=ds.id)
    job.eval_id = made.id
    session.add(job)
    session.commit()
    return made


def grades(close: tuple[int, int], exact: tuple[int, int]) -> dict[str, tuple[int, int]]:
    return {"close to the reference": close, "exact match": exact}


def test_the_job_page_loads_the_panel_from_the_evals_route(client, finished_job: FinishedJob):
    html = client.get(f"/jobs/{finished_job.job.id}").text
    assert f'hx-get="/jobs/{finished_job.job.id}/evals" hx-trigger="load" hx-swap="outerHTML"' in html


def test_scores_per_checkpoint_the_best_marked_and_overfitting_said(client, session, settings, finished_job):
    job, (c10, c20, c30) = finished_job.job, finished_job.checkpoints
    made = attach_eval(session, settings, job)
    r10 = add_run(session, made.id, c10, 9, 1, graders=grades((9, 1), (6, 4)))
    add_run(session, made.id, c20, 7, 3, graders=grades((7, 3), (5, 5)))
    add_run(session, made.id, c30, 2, 1, status=EvalRunStatus.in_progress, graders=grades((2, 1), (1, 2)), n_items=10)
    html = client.get(f"/jobs/{job.id}/evals").text
    assert html.startswith('<section class="card job-evals" id="job-evals"')
    # Still live: the step-30 run is going, so the panel asks for itself again.
    assert f'hx-get="/jobs/{job.id}/evals" hx-trigger="every 3s"' in html
    assert f'<a href="/evals/{made.id}">eval: held-out</a>' in html
    assert f'href="/evals/{made.id}/runs/{r10.id}"' in html
    assert "<th>close to the reference</th><th>exact match</th>" in html
    row10 = html[html.index('id="ckpt-10"') : html.index('id="ckpt-20"')]
    assert 'class="best"' in row10 and '<span class="rate">90%</span>' in row10 and "60%" in row10
    row30 = html[html.index('id="ckpt-30"') :]
    assert "in progress" in row30 and "3/10" in row30
    assert "The checkpoint at <strong>step 10</strong>: 90% of the eval" in html
    assert "validation loss 0.5 (the highest pass rate)." in html
    assert f'href="/playground?model={c10.fine_tuned_model_checkpoint.replace(":", "%3A")}"' in html
    assert "Chat with the best checkpoint" in html and "Use the best checkpoint as the tuned model" in html
    assert f'hx-post="/jobs/{job.id}/checkpoints/{c10.id}/promote"' in html
    verdict = re.search(r'<p class="flash flash-warning overfit" id="overfit-verdict" role="status">([^<]+)</p>', html)
    assert verdict, html
    assert verdict.group(1).startswith("Validation loss has risen since step 10 (0.5 → 0.9)")
    assert verdict.group(1).endswith("the model is overfitting; the checkpoint at step 10 is the best.")
    chart = json.loads(re.search(r"data-points='([^']*)'", html).group(1))
    assert [p["step"] for p in chart] == [10, 20, 30] and chart[0] == {"step": 10, "s0": 0.9, "s1": 0.9, "s2": 0.6}
    series = json.loads(re.search(r"data-series='([^']*)'", html).group(1))
    assert [s["label"] for s in series] == ["passed every grader", "close to the reference", "exact match"]


def test_the_eval_score_outranks_validation_loss(session, settings, finished_job: FinishedJob):
    job, (c10, c20, c30) = finished_job.job, finished_job.checkpoints
    made = attach_eval(session, settings, job)
    add_run(session, made.id, c10, 50, 50)
    add_run(session, made.id, c20, 80, 20)
    add_run(session, made.id, c30, 80, 20)  # a tie with step 20: the lower validation loss (step 20's) wins
    panel = job_panel(session, settings, job.id)
    assert panel.best is not None and panel.best.checkpoint.id == c20.id
    assert panel.best_reason.startswith("the highest pass rate, tied with step 30: the lower validation loss")
    assert not panel.live
    assert panel.overfitting is not None  # validation loss still rose after step 10


def test_a_falling_eval_score_is_said_too(session, settings, finished_job: FinishedJob):
    job, (c10, c20, c30) = finished_job.job, finished_job.checkpoints
    made = attach_eval(session, settings, job)
    add_run(session, made.id, c10, 60, 40)
    add_run(session, made.id, c20, 90, 10)
    add_run(session, made.id, c30, 55, 45)
    panel = job_panel(session, settings, job.id)
    assert panel.overfitting is not None
    assert "the eval pass rate has fallen since step 20 (90% → 55%)" in panel.overfitting.message
    assert panel.overfitting.message.endswith("the checkpoint at step 20 is the best.")


def test_without_an_eval_the_lowest_validation_loss_is_best(client, finished_job: FinishedJob):
    job = finished_job.job
    html = client.get(f"/jobs/{job.id}/evals").text
    assert "No eval attached: checkpoints are ranked by validation loss." in html
    assert "validation loss 0.5 (the lowest validation loss)." in html and 'id="eval-chart"' not in html
    assert "hx-trigger" not in html  # the job has ended: nothing to refresh
    assert "Use the best checkpoint as the tuned model" in html


def test_once_promoted_the_panel_says_so_instead_of_offering_it(client, session, finished_job: FinishedJob):
    job, best = finished_job.job, finished_job.checkpoints[0]
    client.post(f"/jobs/{job.id}/checkpoints/{best.id}/promote")
    html = client.get(f"/jobs/{job.id}/evals").text
    assert f"The tuned model {job.fine_tuned_model} answers with this checkpoint." in html
    assert "Use the best checkpoint as the tuned model" not in html
    assert '<span class="badge">tuned model</span>' in html


def test_a_running_job_refreshes_and_waits_for_checkpoints(client, session, settings):
    job = Job(provider="local", model=TINY, status=JobStatus.running)
    session.add(job)
    session.commit()
    attach_eval(session, settings, job)
    html = client.get(f"/jobs/{job.id}/evals").text
    assert 'hx-trigger="every 3s"' in html
    assert "No checkpoints yet: each one is evaluated as it is written." in html
    assert "The eval score by step appears when the first checkpoint has been graded." in html


def test_an_unknown_job_is_not_found(client):
    assert client.get("/jobs/ftjob-nope/evals").status_code == 404


def test_a_job_without_validation_says_why_no_checkpoint_is_marked(client, session, finished_job: FinishedJob):
    for checkpoint in finished_job.checkpoints:  # trained without a validation set: no valid_loss anywhere
        checkpoint.metrics = {k: v for k, v in checkpoint.metrics.items() if k != "valid_loss"}
        session.add(checkpoint)
    session.commit()
    html = client.get(f"/jobs/{finished_job.job.id}/evals").text
    assert "This job trained without a validation set" in html and "attach an eval" in html
    assert "The best checkpoint is marked once" not in html  # it never would be: no promise of it


def test_a_job_with_validation_waits_for_a_validation_loss(client, session, finished_job: FinishedJob):
    job = finished_job.job
    job.validation_file = "file-valid"
    for checkpoint in finished_job.checkpoints:
        checkpoint.metrics = {k: v for k, v in checkpoint.metrics.items() if k != "valid_loss"}
        session.add(checkpoint)
    session.add(job)
    session.commit()
    html = client.get(f"/jobs/{job.id}/evals").text
    assert "The best checkpoint is marked once a checkpoint has a validation loss." in html
