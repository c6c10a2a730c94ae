"""The live event stream of a job: server-sent events the job page's log, chart and summary listen to."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from app.errors import NotFound
from app.jobs import monitoring
from app.settings.maintenance import maintenance_enabled
from app.tables import Job, JobEvent
from app.tables.common import MAX_DB_INT
from app.web.sse import sse_message

router = APIRouter(tags=["jobs"])

HEARTBEAT_SECONDS = 15.0


def _start_seq(last_event_id: str | None, after: int | None) -> int:
    # The browser's Last-Event-ID (sent on reconnect) wins over the page's ?after= starting point. A seq beyond
    # what the database can hold is past every event: clamped, it reads nothing instead of overflowing the driver.
    for raw in (last_event_id, after):
        try:
            if raw is not None and str(raw).strip():
                return min(MAX_DB_INT, max(0, int(str(raw).strip())))
        except ValueError:
            continue
    return 0


@router.get("/jobs/{job_id}/events/stream", include_in_schema=False)
async def job_event_stream(
    request: Request, job_id: str, after: int | None = None, last_event_id: str | None = Header(None)
):
    """text/event-stream of a job's events (id = seq), metrics for the chart and summary updates."""
    # No request-scoped session here: it would hold a pooled connection for as long as the stream stays open.
    if await anyio.to_thread.run_sync(monitoring.current_status, request.app.state.engine, job_id) is None:
        raise NotFound(f"No job {job_id}.", param="job_id")
    start = _start_seq(last_event_id, after)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, job_id, start), media_type="text/event-stream", headers=headers)


async def _stream(request: Request, job_id: str, after_seq: int) -> AsyncIterator[str]:
    # A disconnecting browser only ends this generator (Starlette cancels it); the job itself is never touched.
    engine = request.app.state.engine
    feed: monitoring.EventFeed = request.app.state.event_feed
    templates = request.app.state.templates
    yield "retry: 2000\n\n"
    yield sse_message(await _summary_html(request, job_id), event="summary")
    status = await anyio.to_thread.run_sync(monitoring.current_status, engine, job_id)
    last_sent = time.monotonic()
    while True:
        batch = await feed.wait_for_events(job_id, after_seq, HEARTBEAT_SECONDS, status)
        if batch is None:
            yield sse_message("gone", event="end")
            return
        if batch.events:
            after_seq = batch.last_seq
            yield "".join(_event_messages(templates, event) for event in batch.events)
            # The summary (badge, progress, tokens) only changes with metrics or a status change.
            if batch.status != status or any(e.type == "metrics" for e in batch.events):
                status = batch.status
                yield sse_message(await _summary_html(request, job_id), event="summary")
        elif batch.status != status and not batch.status.is_terminal:
            status = batch.status
            yield sse_message(await _summary_html(request, job_id), event="summary")
        elif batch.status.is_terminal:
            yield sse_message(await _summary_html(request, job_id), event="summary")
            yield sse_message(batch.status.value, event="end")
            return
        elif time.monotonic() - last_sent >= HEARTBEAT_SECONDS - 0.5:
            yield ": keepalive\n\n"
        last_sent = time.monotonic()


def _event_messages(templates: Jinja2Templates, event: JobEvent) -> str:
    html = templates.get_template("jobs/_event.html").render(event=event)
    out = sse_message(html, event="log", event_id=event.seq)
    point = monitoring.metric_point(event)
    if point is not None:
        out += sse_message(point, event="metrics", event_id=event.seq)
    return out


async def _summary_html(request: Request, job_id: str) -> str:
    def render() -> str:
        with Session(request.app.state.engine) as session:
            job = session.get(Job, job_id)
            if job is None:
                return ""
            summary = monitoring.job_summary(session, job)
            maintenance = maintenance_enabled(session)
            template = request.app.state.templates.get_template("jobs/_summary.html")
            return template.render(summary=summary, maintenance=maintenance)

    return await anyio.to_thread.run_sync(render)
