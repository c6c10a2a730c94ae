"""In Chromium: from the models page to a tuned model's export page, a GGUF download, its size, the Modelfile."""

from __future__ import annotations

import shutil

import pytest
from sqlmodel import Session

from app.tables import Job, JobStatus, TunedModel
from tests.e2e.conftest import TINY, screenshot
from tests.export.conftest import tiny_adapter
from tests.support.jobs_fixtures import tiny_model

# In tests/e2e, beside the other browser tests: the package-scoped Chromium fixture must not outlive its package
# (used from tests/export, its Playwright loop stayed running and broke later asyncio tests).
__all__ = ["tiny_adapter", "tiny_model"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_tuned_model_is_exported_from_its_page(page, e2e_server, tiny_adapter):
    settings = e2e_server.app.state.settings
    with Session(e2e_server.app.state.engine) as session:
        job = Job(provider="local", model=TINY, status=JobStatus.succeeded, suffix="export")
        session.add(job)
        session.commit()
        name = f"ft:{TINY}:export:{job.id}"
        shutil.copytree(tiny_adapter, settings.data_dir / "jobs" / job.id / "adapter")
        session.add(TunedModel(id=name, job_id=job.id, base_model=TINY, path=f"jobs/{job.id}/adapter"))
        session.commit()
    page.goto("/models")
    page.locator("#tuned-models tr", has_text=name).get_by_role("link", name="Export").click()
    page.wait_for_url("**/export")
    section = page.locator("#model-export")
    assert "FROM ./" in section.locator("#ollama-modelfile").inner_text()
    with page.expect_download() as download:
        section.get_by_role("link", name="GGUF f16").click()
    assert download.value.suggested_filename.endswith("-f16.gguf")
    page.reload()
    row = page.locator("#export-downloads tr", has_text="GGUF f16")
    assert "built on first download" not in row.inner_text()
    page.get_by_role("button", name="Copy the Modelfile").click()
    screenshot(page, "40-model-export")
