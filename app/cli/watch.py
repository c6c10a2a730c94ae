"""`tuneboard jobs watch`: follow a job by polling it (as OpenAI's own scripts do) until it ends."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from app.cli.output import out, plain, print_json, when

TERMINAL = {"succeeded": 0, "failed": 1, "cancelled": 3}
LEVEL_STYLE = {"warn": "yellow", "error": "red"}


class Tracker:
    """What the watch has seen: the events already shown, the latest step and losses."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.step: int | None = None
        self.total: int | None = None
        self.losses: dict[str, float] = {}

    def new_events(self, client: Any, job_id: str) -> list[dict[str, Any]]:
        """Events not shown yet, oldest first (the API lists newest first; one page is enough between looks)."""
        page = client.fine_tuning.jobs.list_events(job_id, limit=100)
        fresh = [e for e in plain(list(page.data)) if e["id"] not in self.seen]
        self.seen.update(e["id"] for e in fresh)
        fresh.reverse()
        for event in fresh:
            self._read_metrics(event)
        return fresh

    def _read_metrics(self, event: dict[str, Any]) -> None:
        data = event.get("data") or {}
        if event.get("type") != "metrics" or not isinstance(data, dict):
            return
        if isinstance(data.get("step"), int):
            self.step = data["step"]
        if isinstance(data.get("total_steps"), int):
            self.total = data["total_steps"]
        for key in ("train_loss", "valid_loss", "full_valid_loss"):
            if isinstance(data.get(key), int | float):
                self.losses[key] = float(data[key])

    def summary(self, status: str) -> str:
        """One line: status, step of total, latest losses."""
        parts = [status]
        if self.step is not None:
            parts.append(f"step {self.step}/{self.total}" if self.total else f"step {self.step}")
        parts += [f"{name.replace('_', ' ')} {value:.4f}" for name, value in self.losses.items()]
        return " · ".join(parts)


def watch_job(client: Any, job_id: str, interval: float, as_json: bool) -> int:
    """Follow the job until it ends; the exit status: 0 succeeded, 1 failed, 3 cancelled."""
    tracker = Tracker()
    if as_json:
        return _watch_json(client, job_id, interval, tracker)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[eta]}", style="dim"),
    )
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task("starting", total=None, eta="")
        while True:
            job = client.fine_tuning.jobs.retrieve(job_id)
            for event in tracker.new_events(client, job_id):
                if event.get("type") != "metrics":
                    style = LEVEL_STYLE.get(str(event.get("level")), "")
                    progress.console.print(f"{when(event.get('created_at'))}  {event.get('message')}", style=style)
            finish = when(job.estimated_finish)
            progress.update(
                task,
                description=tracker.summary(job.status),
                total=tracker.total,
                completed=tracker.step or 0,
                eta=f"finish ≈ {finish}" if finish and job.status not in TERMINAL else "",
            )
            if job.status in TERMINAL:
                break
            time.sleep(interval)
    return _report_end(job)


def _watch_json(client: Any, job_id: str, interval: float, tracker: Tracker) -> int:
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        for event in tracker.new_events(client, job_id):
            print(json.dumps(event, ensure_ascii=False), flush=True)
        if job.status in TERMINAL:
            print_json(job)
            return TERMINAL[job.status]
        time.sleep(interval)


def _report_end(job: Any) -> int:
    if job.status == "succeeded":
        out.print(f"Job {job.id} succeeded: chat with [bold]{job.fine_tuned_model}[/].")
    elif job.status == "failed":
        message = job.error.message if job.error else "no reason given"
        out.print(f"Job {job.id} failed: {message}", style="red", markup=False)
    else:
        out.print(f"Job {job.id} was cancelled.", style="yellow")
    return TERMINAL[job.status]
