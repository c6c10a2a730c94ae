"""A DPO job's loss chart says what its loss is (DPO's, per pair), a supervised job's says nats per token."""

from __future__ import annotations

import html as markup

from sqlmodel import select

from app.tables import Job
from tests.integration.test_dpo_jobs import preference_dataset
from tests.support.builders import make_dataset
from tests.support.jobs_fixtures import settings, tiny_model  # noqa: F401


def _loss_chart(page: str) -> str:
    """The loss chart's opening tag."""
    start = page.index('<div id="loss-chart"')
    return markup.unescape(page[start : page.index(">", start)])


def test_the_loss_axis_of_a_dpo_job_is_dpo_loss_per_pair_and_of_a_supervised_job_nats_per_token(client, session):
    client.post("/jobs", data={"dataset_id": preference_dataset(session).id, "method": "dpo", "accept_warnings": "on"})
    dpo = session.exec(select(Job)).one()
    assert dpo.method["type"] == "dpo"
    chart = _loss_chart(client.get(f"/jobs/{dpo.id}").text)
    assert 'data-loss-axis="DPO loss per pair"' in chart and "nats per token" not in chart.split("data-loss-help")[0]
    assert "−log σ(β × reward margin), the mean over the step's preference pairs" in chart
    assert 'aria-label="Loss chart: training and validation DPO loss per pair by step"' in chart

    client.post("/jobs", data={"dataset_id": make_dataset(session, name="chats").id, "accept_warnings": "on"})
    supervised = session.exec(select(Job).where(Job.id != dpo.id)).one()
    chart = _loss_chart(client.get(f"/jobs/{supervised.id}").text)
    assert 'data-loss-axis="loss (nats per token)"' in chart and "data-loss-help" not in chart
