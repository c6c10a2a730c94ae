"""The live event stream: real uvicorn, events written by the test, read with httpx streaming."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading

import httpx
from sqlmodel import Session

from app.tables import Job, JobEvent, JobStatus
from app.tables.common import utcnow


def make_job(engine, status: JobStatus = JobStatus.running) -> str:
    with Session(engine) as s:
        job = Job(model="tiny-llama", status=status.value, started_at=utcnow())
        s.add(job)
        s.commit()
        return job.id


def add_event(engine, job_id: str, message: str, type: str = "message", data=None) -> int:
    with Session(engine) as s:
        event = JobEvent(job_id=job_id, message=message, type=type, data=data)
        s.add(event)
        s.commit()
        return event.seq


def set_status(engine, job_id: str, status: JobStatus) -> None:
    with Session(engine) as s:
        job = s.get(Job, job_id)
        job.status = status.value
        s.add(job)
        s.commit()


class StreamReader:
    """Reads an SSE stream in a thread and hands each parsed message (event, id, data) to a queue."""

    def __init__(self, url: str, headers: dict | None = None):
        self.messages: queue.Queue = queue.Queue()
        self.done = threading.Event()
        self.url, self.headers = url, headers or {}
        self.response_headers: dict = {}
        self.socket = None
        self._stop = threading.Event()
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=30))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.client.stream("GET", self.url, headers=self.headers) as r:
                self.response_headers = dict(r.headers)
                self.socket = r.extensions["network_stream"].get_extra_info("socket")
                fields: dict = {}
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line == "":
                        if "data" in fields:
                            self.messages.put(fields)
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
        except (httpx.HTTPError, RuntimeError, OSError):
            if not self._stop.is_set():  # closing the client from the test ends the read with an error
                raise
        finally:
            self.done.set()

    def next(self, event: str, timeout: float = 5.0) -> dict:
        """The next message of the given event type (others are skipped)."""
        while True:
            message = self.messages.get(timeout=timeout)
            if message.get("event", "message") == event:
                return message

    def close(self) -> None:
        """Hang up, as a browser tab does when it closes."""
        self._stop.set()
        if self.socket is not None and not self.done.is_set():
            with contextlib.suppress(OSError):
                self.socket.shutdown(socket.SHUT_RDWR)  # unblocks the reader thread's recv at once
        self.thread.join(5)
        self.client.close()


def test_new_events_arrive_on_the_open_stream_with_their_seq_as_id(live_server, engine):
    job_id = make_job(engine)
    reader = StreamReader(f"{live_server.url}/jobs/{job_id}/events/stream")
    reader.next("summary")
    assert reader.response_headers["content-type"].startswith("text/event-stream")
    seq = add_event(engine, job_id, "Step 1/10: training loss=2.31")
    message = reader.next("log", timeout=3)
    assert message["id"] == str(seq)
    assert "Step 1/10: training loss=2.31" in message["data"]
    reader.close()


def test_event_text_is_escaped_in_the_log_fragment(live_server, engine):
    job_id = make_job(engine)
    reader = StreamReader(f"{live_server.url}/jobs/{job_id}/events/stream")
    add_event(engine, job_id, '<img src=x onerror="alert(1)"> & done')
    data = reader.next("log")["data"]
    assert "<img" not in data
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; done" in data
    reader.close()


def test_reconnect_with_last_event_id_resumes_after_that_event(live_server, engine):
    job_id = make_job(engine)
    seqs = [add_event(engine, job_id, f"event {i}") for i in range(5)]
    reader = StreamReader(f"{live_server.url}/jobs/{job_id}/events/stream", headers={"Last-Event-ID": str(seqs[2])})
    first = reader.next("log")
    second = reader.next("log")
    assert [first["id"], second["id"]] == [str(seqs[3]), str(seqs[4])]
    assert "event 3" in first["data"]
    reader.close()


def test_last_event_id_wins_over_the_pages_after_parameter(live_server, engine):
    job_id = make_job(engine)
    seqs = [add_event(engine, job_id, f"event {i}") for i in range(3)]
    reader = StreamReader(
        f"{live_server.url}/jobs/{job_id}/events/stream?after={seqs[0]}", headers={"Last-Event-ID": str(seqs[1])}
    )
    assert reader.next("log")["id"] == str(seqs[2])
    reader.close()


def test_metrics_events_also_arrive_as_json_points_for_the_chart(live_server, engine):
    job_id = make_job(engine)
    reader = StreamReader(f"{live_server.url}/jobs/{job_id}/events/stream")
    seq = add_event(
        engine,
        job_id,
        "Step 3/8",
        type="metrics",
        data={"step": 3, "total_steps": 8, "train_loss": 1.25, "valid_loss": 1.5},
    )
    point = json.loads(reader.next("metrics")["data"])
    assert point == {"seq": seq, "step": 3, "total_steps": 8, "train_loss": 1.25, "valid_loss": 1.5}
    summary = reader.next("summary")["data"]
    assert "step 3 of 8" in summary
    reader.close()


def test_stream_sends_everything_then_ends_when_the_job_is_terminal(live_server, engine):
    job_id = make_job(engine)
    reader = StreamReader(f"{live_server.url}/jobs/{job_id}/events/stream")
    reader.next("summary")
    seq = add_event(engine, job_id, "The job succeeded.")
    set_status(engine, job_id, JobStatus.succeeded)
    assert reader.next("log")["id"] == str(seq)
    assert reader.next("end")["data"] == "succeeded"
    assert reader.done.wait(5)
    reader.close()


def test_disconnecting_client_does_not_cancel_the_job(live_server, engine):
    job_id = make_job(engine)
    with httpx.Client(timeout=10) as c, c.stream("GET", f"{live_server.url}/jobs/{job_id}/events/stream") as r:
        next(r.iter_lines())
    add_event(engine, job_id, "still training")
    with Session(engine) as s:
        job = s.get(Job, job_id)
        assert job.status == JobStatus.running.value
        assert job.cancel_requested is False


def test_stream_of_unknown_job_is_404(live_server):
    response = httpx.get(f"{live_server.url}/jobs/ftjob-nope/events/stream", timeout=10)
    assert response.status_code == 404
