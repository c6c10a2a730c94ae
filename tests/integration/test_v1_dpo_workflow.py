"""A DPO job through the real openai SDK on a live server: upload pairs, train on the tiny model, watch the
preference metrics arrive as events, chat with the tuned model."""

from __future__ import annotations

from openai import OpenAI

from app.main import create_app
from app.tables.migrate import upgrade
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.integration.test_dpo_jobs import pair
from tests.integration.test_v1_api import jsonl, upload
from tests.integration.test_v1_workflow import wait_for_job


def test_a_dpo_job_through_the_openai_sdk_reports_preference_metrics_and_its_model_chats(tmp_path):
    from app.engine.testing import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny-llama")
    settings = make_settings(
        tmp_path / "data", embedded_worker=True, worker_poll_seconds=0.1, local_models={"tiny-llama": tiny}
    )
    upgrade(settings)
    with (
        LiveServer(create_app(settings), free_port()) as server,
        OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as client,
    ):
        train = upload(client, "pairs.jsonl", jsonl([pair(i) for i in range(12)]))
        valid = upload(client, "valid-pairs.jsonl", jsonl([pair(100 + i) for i in range(4)]))
        job = client.fine_tuning.jobs.create(
            model="tiny-llama",
            training_file=train.id,
            validation_file=valid.id,
            suffix="prefs",
            seed=7,
            method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1, "n_epochs": 2, "batch_size": 4}}},
        )
        assert job.method.type == "dpo" and job.method.dpo.hyperparameters.beta == 0.1

        done = wait_for_job(client, job.id, 180)
        assert done.status == "succeeded", done.error
        assert done.method.type == "dpo" and done.method.dpo.hyperparameters.n_epochs == 2
        events = list(client.fine_tuning.jobs.list_events(fine_tuning_job_id=job.id, limit=100))
        metrics = [e.data for e in events if e.type == "metrics"]
        assert metrics and {"step", "train_loss", "train_reward_margin", "train_reward_accuracy"} <= set(metrics[0])
        assert max(m["step"] for m in metrics) == 6  # 12 pairs in batches of 4, 2 epochs
        checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert [c.step_number for c in checkpoints] == [6, 3]  # OpenAI's checkpoint metrics (the events hold DPO's)
        assert checkpoints[0].metrics.valid_loss is not None

        reply = client.chat.completions.create(
            model=done.fine_tuned_model, messages=[{"role": "user", "content": "say 3"}], max_tokens=8, seed=1
        )
        assert reply.model == done.fine_tuned_model and reply.choices[0].message.content is not None
