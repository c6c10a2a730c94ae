"""`tuneboard --openai` drives OpenAI's API: here the stand-in (tests/support/fake_openai.py) on a real uvicorn."""

from __future__ import annotations

import pytest

from tests.cli.runner import ok_json, tuneboard
from tests.conftest import LiveServer, free_port
from tests.integration.test_v1_api import example, jsonl
from tests.support.fake_openai import KEY, FakeOpenAIState, make_app


@pytest.fixture
def fake_openai():
    state = FakeOpenAIState()
    with LiveServer(make_app(state), free_port()) as server:
        server.state = state
        yield server


def test_openai_mode_uploads_creates_lists_watches_and_deletes(fake_openai, tmp_path):
    # TUNEBOARD_* are set but do not apply with --openai: the key comes from OPENAI_API_KEY.
    env = {"TUNEBOARD_URL": "http://127.0.0.1:9/v1", "TUNEBOARD_API_KEY": "tb-wrong", "OPENAI_API_KEY": KEY}
    at = ("--openai", "--base-url", fake_openai.url + "/v1")
    train = tmp_path / "train.jsonl"
    train.write_bytes(jsonl([example(i) for i in range(12)]))

    file_id = ok_json(*at, "files", "upload", str(train), env=env)["id"]
    job = ok_json(*at, "jobs", "create", "--model", "gpt-4o-mini-2024-07-18", "-t", file_id, "--suffix", "cli", env=env)
    assert (job["training_file"], job["suffix"]) == (file_id, "cli")
    assert [j["id"] for j in ok_json(*at, "jobs", "list", env=env)["data"]] == [job["id"]]
    table = tuneboard(*at, "jobs", "list", env=env)
    assert table.returncode == 0 and job["id"] in table.stdout and "gpt-4o-mini" in table.stdout

    watched = tuneboard(*at, "jobs", "watch", job["id"], "--interval", "0.1", env=env)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "succeeded" in watched.stdout
    tuned = ok_json(*at, "jobs", "get", job["id"], env=env)["fine_tuned_model"]
    assert tuneboard(*at, "models", "delete", tuned, "--yes", env=env).returncode == 0
    assert fake_openai.state.deleted_models == [tuned]
    assert "POST /v1/files" in fake_openai.state.requests

    second = ok_json(*at, "jobs", "create", "-m", "gpt-4o-mini-2024-07-18", "-t", file_id, env=env)
    assert ok_json(*at, "jobs", "cancel", second["id"], "--yes", env=env)["status"] == "cancelled"
    assert tuneboard(*at, "jobs", "watch", second["id"], env=env).returncode == 3


def test_openai_mode_reports_a_failed_job_by_its_exit_status(fake_openai, tmp_path):
    fake_openai.state.fail_jobs = True
    env = {"OPENAI_API_KEY": KEY}
    at = ("--openai", "--base-url", fake_openai.url + "/v1")
    train = tmp_path / "train.jsonl"
    train.write_bytes(jsonl([example(i) for i in range(12)]))
    # A local path is uploaded first; --watch follows the job and exits as `jobs watch` does.
    watched = tuneboard(*at, "jobs", "create", "-m", "gpt-4o-mini-2024-07-18", "-t", str(train), "--watch", env=env)
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert "Uploaded" in watched.stderr and "failed: The job failed due to an invalid training file" in watched.stdout


def test_openai_mode_says_when_the_key_is_refused(fake_openai):
    result = tuneboard("--openai", "--base-url", fake_openai.url + "/v1", "jobs", "list", env={"OPENAI_API_KEY": "x"})
    assert result.returncode == 1 and "refused the API key" in result.stderr
