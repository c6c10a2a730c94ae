"""The training process as the job runner sees it: JSON lines on stdout, exit codes, SIGTERM within 5 s."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from app.engine import protocol as p
from tests.engine.conftest import make_spec, number_records

pytestmark = pytest.mark.slow


def _start(spec_path):
    return subprocess.Popen(
        [sys.executable, "-m", "app.engine.train_main", str(spec_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_the_process_prints_protocol_lines_and_exits_zero(tiny_settings, tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(
        json.dumps(make_spec(tiny_settings, tmp_path, hyperparameters={"n_epochs": 1, "batch_size": 4}))
    )
    proc = _start(spec_path)
    out, _ = proc.communicate(timeout=120)
    lines = [p.parse_line(line) for line in out.splitlines()]
    assert proc.returncode == p.EXIT_OK
    assert all(line is not None for line in lines)  # nothing but protocol on stdout
    assert [line["kind"] for line in lines if line["kind"] != "event"] == ["hyperparameters", "checkpoint", "result"]


def test_a_missing_spec_file_is_an_error_line_and_exit_one(tmp_path):
    proc = _start(tmp_path / "missing.json")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == p.EXIT_FAILED
    assert p.parse_line(out.splitlines()[-1])["code"] == p.ERROR_INVALID_SPEC


def test_sigterm_stops_training_within_five_seconds_with_exit_143(tiny_settings, tmp_path):
    spec = make_spec(
        tiny_settings, tmp_path, train_records=number_records(40), hyperparameters={"n_epochs": 25, "batch_size": 1}
    )
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    deadline = time.monotonic() + 90
    with _start(spec_path) as proc:
        for line in proc.stdout:  # wait for a real training step, not just start-up
            if (parsed := p.parse_line(line)) and parsed["kind"] == "event" and parsed["type"] == "metrics":
                break
            assert time.monotonic() < deadline, "training never started"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert time.monotonic() - sent < 5
    assert proc.returncode == p.EXIT_CANCELLED
    assert not (tmp_path / "out" / "adapter").exists()
