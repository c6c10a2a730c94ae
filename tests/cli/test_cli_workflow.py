"""The seed workflow from the terminal: the real `tuneboard` executable against a live server with the tiny model."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from app.tables.migrate import upgrade
from tests.cli.runner import ok_json, tuneboard
from tests.conftest import API_KEY, LiveServer, free_port, make_settings
from tests.integration.test_v1_api import example, jsonl


@pytest.fixture
def tiny_server(tmp_path):
    """A live server with the embedded worker and the tiny model; maintenance is off (the default)."""
    from app.engine.testing import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny-llama")
    settings = make_settings(
        tmp_path / "data", embedded_worker=True, worker_poll_seconds=0.1, local_models={"tiny-llama": tiny}
    )
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as server:
        yield server


@pytest.mark.slow
def test_upload_create_watch_events_chat_and_delete_from_the_terminal(tiny_server, tmp_path):
    env = {"TUNEBOARD_URL": tiny_server.url + "/v1", "TUNEBOARD_API_KEY": API_KEY}
    # The file as it often arrives: a byte order mark, Windows line ends and an example pasted twice.
    raw = tmp_path / "data.jsonl"
    lines = jsonl([example(i) for i in range(12)] + [example(0)])
    raw.write_bytes(b"\xef\xbb\xbf" + lines.replace(b"\n", b"\r\n"))

    prepared = ok_json("prepare", str(raw), "--validation-fraction", "0")
    assert prepared["train"] == 12 and prepared["fixes"]["duplicate"]["lines"] == [13]
    assert {"bom", "crlf"} <= set(prepared["fixes"]) and prepared["rejected_lines"] == []
    train = tmp_path / "data_train.jsonl"
    assert train.read_bytes() == jsonl([example(i) for i in range(12)])
    checked = ok_json("check", str(train))
    assert checked["ok"] and checked["train"]["report"]["n_valid"] == 12
    raw_check = tuneboard("check", str(raw))
    assert raw_check.returncode == 0 and "duplicate" in raw_check.stdout  # a warning: only --strict fails on it

    uploaded = tuneboard("files", "upload", str(train), env=env)
    assert uploaded.returncode == 0 and "Uploaded data_train.jsonl as file-" in uploaded.stdout, uploaded.stderr
    listed = ok_json("files", "list", env=env)["data"]
    file_id = listed[0]["id"]
    assert listed[0]["filename"] == "data_train.jsonl"

    job = ok_json("jobs", "create", "-m", "tiny-llama", "-t", file_id, "--epochs", "1", "--batch-size", "4", env=env)
    assert job["status"] in ("validating_files", "queued", "running") and job["training_file"] == file_id

    watched = tuneboard("jobs", "watch", job["id"], "--interval", "0.2", env=env, timeout=180)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert f"Job {job['id']} succeeded" in watched.stdout and "train loss" in watched.stdout

    events = tuneboard("jobs", "events", job["id"], env=env)
    assert events.returncode == 0 and "Level" in events.stdout
    event_list = ok_json("jobs", "events", job["id"], env=env)["data"]
    assert event_list and [e["created_at"] for e in event_list] == sorted(e["created_at"] for e in event_list)
    assert any(e["type"] == "metrics" for e in event_list)
    latest = ok_json("jobs", "events", job["id"], "--limit", "3", env=env)["data"]
    assert [e["id"] for e in latest] == [e["id"] for e in event_list[-3:]]
    assert ok_json("jobs", "checkpoints", job["id"], env=env)["data"]
    assert job["id"] in tuneboard("jobs", "list", env=env).stdout

    model = ok_json("jobs", "get", job["id"], env=env)["fine_tuned_model"]
    assert model in [m["id"] for m in ok_json("models", "list", env=env)["data"]]
    reply = tuneboard("chat", model, "--message", "What is 3 plus one?", "--max-tokens", "4", env=env)
    assert reply.returncode == 0 and reply.stdout.strip(), reply.stderr
    # Two messages, an empty line (asked again) and /exit: four prompts.
    talk = tuneboard("chat", model, "--max-tokens", "4", stdin="What is 3 plus one?\n\nAnd 4?\n/exit\n", env=env)
    assert talk.returncode == 0 and talk.stdout.count("you> ") == 4, talk.stdout + talk.stderr
    completion = ok_json("chat", model, "-s", "Numbers only.", "-m", "hi", "--max-tokens", "4", env=env)
    assert completion["object"] == "chat.completion" and completion["model"] == model

    unconfirmed = tuneboard("models", "delete", model, env=env)  # stdin is not a terminal: nothing is asked
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    refused = tuneboard("models", "delete", model, "--yes", env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("Refused:") and "maintenance" in refused.stderr
    assert "TUNEBOARD_MAINTENANCE=1" in " ".join(refused.stderr.split())

    switched = httpx.put(
        tiny_server.url + "/api/settings/maintenance",
        json={"enabled": True},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert switched.status_code == 200 and switched.json() == {"enabled": True}
    deleted = tuneboard("models", "delete", model, "--yes", env=env)
    assert deleted.returncode == 0 and f"Deleted model {model}" in deleted.stdout, deleted.stderr
    assert model not in [m["id"] for m in ok_json("models", "list", env=env)["data"]]
    gone = tuneboard("models", "get", model, "--json", env=env)
    assert gone.returncode == 1 and gone.stderr.startswith("Error (404)")
    copy = tmp_path / "copy.jsonl"
    assert ok_json("files", "download", file_id, "-o", str(copy), env=env)["bytes"] == train.stat().st_size
    assert copy.read_bytes() == train.read_bytes()
    again = tuneboard("files", "download", file_id, "-o", str(copy), env=env)
    assert again.returncode == 1 and "--force" in again.stderr
    assert ok_json("files", "delete", file_id, "--yes", env=env)["deleted"] is True
    assert tuneboard("files", "get", file_id, env=env).returncode == 1
