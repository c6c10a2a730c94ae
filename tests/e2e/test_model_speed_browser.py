"""The base model list in Chromium shows the speeds measured on this machine: "not measured yet" first, then the
training tokens/s of a finished local job and the chat tokens/s of a decoded reply."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlmodel import Session

from app.engine.throughput import ChatSpeeds
from app.main import create_app
from app.tables import Job, JobEvent, JobStatus
from app.tables.db import make_engine
from app.tables.migrate import upgrade
from tests.conftest import LiveServer, free_port, make_settings
from tests.e2e.conftest import _REPORT_CSP, WAIT_MS, PageProblems, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TINY = "tiny-llama"


@pytest.fixture(scope="module")
def speed_server(tmp_path_factory) -> Iterator[tuple[LiveServer, object]]:
    """A real server of its own (its jobs stay out of the shared e2e server's lists), with the tiny model."""
    from app.engine.testing import build_tiny_model

    root = tmp_path_factory.mktemp("speed")
    settings = make_settings(root / "data", local_models={TINY: build_tiny_model(root / TINY)})
    upgrade(settings)
    with LiveServer(create_app(settings), free_port()) as server:
        yield server, settings


@pytest.fixture
def tab(chromium, speed_server):
    """A fresh tab on the server; fails the test if a page logged an error."""
    context = chromium.new_context(base_url=speed_server[0].url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    context.add_init_script(_REPORT_CSP)
    page = context.new_page()
    problems = PageProblems(page)
    yield page
    context.close()
    problems.assert_none()


def test_the_base_models_show_measured_speeds_once_known(tab, speed_server):
    _, settings = speed_server
    tab.goto("/models/base")
    row = tab.locator(f"#base-{TINY}")
    expect(row.locator("td.throughput")).to_contain_text("Training: not measured yet")
    expect(row.locator("td.throughput")).to_contain_text("Chat: not measured yet")

    engine = make_engine(settings)
    with Session(engine) as session:
        job = Job(model=TINY, provider="local", status=JobStatus.succeeded, attempts=1, trained_tokens=5000)
        session.add(job)
        session.commit()
        data = {"seconds": 4.1, "tokens_per_second": 1234.0, "processes": 2, "device": "cpu"}
        session.add(JobEvent(job_id=job.id, message=f"New fine-tuned model created: ft:{TINY}::{job.id}", data=data))
        session.commit()
    engine.dispose()
    ChatSpeeds(settings.data_dir).record(TINY, 40, 0.25)

    tab.reload()
    expect(row.locator("td.throughput")).to_contain_text("Training: 1,234 tokens/s (2 processes, CPU)")
    expect(row.locator("td.throughput")).to_contain_text("Chat: 160 tokens/s")
    screenshot(tab, "43-base-models-measured")
