"""The dataset Report: problems per code, statistics, histogram, epochs and cost (HTML and /api JSON)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from app.datasets.validation.chart import histogram_chart
from app.datasets.validation.checks import CODES
from app.datasets.validation.modeltable import picker_models
from app.datasets.validation.report import ReportCache, build_report
from app.web.api_types import DbId
from app.web.rendering import SessionDep, render

router = APIRouter()

ModelQuery = Query(None, max_length=300, description="Model to count tokens and estimate cost for.")
SplitQuery = Query("train", pattern="^(train|validation|all)$", description="Which examples: train, validation, all.")


def _cache(request: Request) -> ReportCache:
    """The app's report memory (built by the app factory)."""
    return request.app.state.report_cache


@router.get("/datasets/{dataset_id}/report", include_in_schema=False)
def report_page(
    request: Request, dataset_id: DbId, session: SessionDep, model: str | None = ModelQuery, split: str = SplitQuery
):
    """The Report page; htmx gets only the report fragment when the model picker changes."""
    settings = request.app.state.settings
    report = build_report(session, dataset_id, model or None, cache=_cache(request), settings=settings, split=split)
    context = {
        "report": report,
        "codes": CODES,
        "chart": histogram_chart(report.histogram),
        "models": picker_models(settings),
    }
    return render(request, "reports/report.html", context, partial="reports/_report.html")


@router.get("/api/datasets/{dataset_id}/report", tags=["datasets"])
def report_api(
    request: Request, dataset_id: DbId, session: SessionDep, model: str | None = ModelQuery, split: str = SplitQuery
) -> dict:
    """Validation report of a dataset for one model: problem counts, statistics and the estimate."""
    settings = request.app.state.settings
    report = build_report(session, dataset_id, model or None, cache=_cache(request), settings=settings, split=split)
    return report.as_api()
