"""The dataset Report: problems per code, statistics, histogram and estimate, from cached per-example counts."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import String, cast, select
from sqlmodel import Session

from app.datasets.validation.checks import CODES
from app.datasets.validation.modeltable import resolve_model, table_date
from app.datasets.validation.pace import current_pace
from app.datasets.validation.report_groups import TOTAL, VALID
from app.datasets.validation.report_quality import QUALITY_CODES, QualityMemo, dataset_clusters, findings, merge_counts
from app.datasets.validation.report_rows import SnapshotStore, current_snapshot, read_state
from app.datasets.validation.report_totals import MIN_TRAINING_EXAMPLES, Report, aggregate
from app.errors import Invalid
from app.tables.dataset import EXAMPLES

__all__ = [
    "MIN_TRAINING_EXAMPLES",
    "Report",
    "ReportCache",
    "build_report",
    "example_ids_with_problem",
    "stored_problem_clause",
]

SPLITS = ("train", "validation", "all")
MEMO_SIZE = 32  # reports kept per app; each is a few kB
COMPUTED_CODES = (
    "over_context_limit",
    "duplicate_example",
    "train_validation_leakage",
    "too_few_examples",
    *QUALITY_CODES,
)

T = EXAMPLES.c


class ReportCache:
    """What the Report remembers for one app (the factory builds it; a tool or test may build its own).

    Finished reports by (model, split, dataset states): a page view of an unchanged dataset reads no rows. After a
    change, `snapshots` (report_rows) re-reads only the rows written since its snapshot of the dataset.
    """

    def __init__(self, max_reports: int = MEMO_SIZE, snapshots: SnapshotStore | None = None) -> None:
        self.max_reports = max_reports
        self.snapshots = snapshots or SnapshotStore()
        self._reports: OrderedDict[tuple, Report] = OrderedDict()
        self._lock = threading.Lock()
        self.quality = QualityMemo()  # near-duplicate clusters per dataset state (report_quality)

    def get(self, key: tuple) -> Report | None:
        """The report kept under `key`, if any."""
        with self._lock:
            return self._reports.get(key)

    def keep(self, key: tuple, report: Report) -> None:
        """Keep a report, dropping the oldest beyond `max_reports`."""
        with self._lock:
            self._reports[key] = report
            while len(self._reports) > self.max_reports:
                self._reports.popitem(last=False)

    def clear(self) -> None:
        """Forget every report and row snapshot, as a restart would."""
        with self._lock:
            self._reports.clear()
        self.snapshots.clear()
        self.quality.clear()


def _validation_hashes(session: Session, validation_dataset_id: int) -> set[str]:
    return set(session.scalars(select(T.content_hash).where(T.dataset_id == validation_dataset_id)))


def build_report(
    session: Session,
    dataset_id: int,
    model: str | None = None,
    *,
    cache: ReportCache,
    settings: Any = None,
    split: str = "train",
    validation_dataset_id: int | None = None,
) -> Report:
    """Validate a dataset for `model` (default from the model table) over `split`'s examples, memoized in `cache`."""
    info = resolve_model(model, settings)
    if split not in SPLITS:
        raise Invalid(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.", param="split")
    state = read_state(session, dataset_id)  # before any row is read (see report_rows)
    validation_state = None if validation_dataset_id is None else read_state(session, validation_dataset_id)
    pace = current_pace(session, info) if info.is_local else None  # changes as jobs finish: part of the key
    key = (str(session.get_bind().engine.url), info, split, state, validation_state, table_date(), pace)
    cached = cache.get(key)
    if cached is not None:
        return cached
    snapshot = current_snapshot(session, cache.snapshots, state, info, settings)
    extra_leaks = set() if validation_dataset_id is None else _validation_hashes(session, validation_dataset_id)
    report = aggregate(
        snapshot.groups, info, split, extra_leaks, snapshot.exact, state.dataset_id, state.name, pace=pace
    )
    report.quality = findings(snapshot.rows, dataset_clusters(session, cache.quality, state, validation_state), split)
    report.warnings = merge_counts(report.warnings, report.quality)
    if report.exact:
        cache.keep(key, report)
    return report


def stored_problem_clause(code: str):
    """A SQL condition for examples whose stored problems include `code`.

    None for the codes the report computes (over_context_limit, duplicate_example, train_validation_leakage,
    too_few_examples): use example_ids_with_problem for those."""
    if code not in CODES:
        raise Invalid(f"Unknown problem code {code!r}.", param="problem")
    if code in COMPUTED_CODES:
        return None
    # Example.problems is stored with json.dumps' default separators; message text cannot fake this (quotes escape).
    return cast(T.problems, String).like(f'%"code": "{code}"%')


def example_ids_with_problem(
    session: Session, dataset_id: int, code: str, model: str | None = None, settings: Any = None, *, cache: ReportCache
) -> list[int]:
    """Ids of the dataset's examples that have problem `code` (for the example list's ?problem= filter)."""
    if code not in CODES:
        raise Invalid(f"Unknown problem code {code!r}.", param="problem")
    if code == "too_few_examples":
        return []
    if code in QUALITY_CODES:
        state = read_state(session, dataset_id)
        rows = current_snapshot(session, cache.snapshots, state, resolve_model(model, settings), settings).rows
        return findings(rows, dataset_clusters(session, cache.quality, state), "all").ids[code]
    base = T.dataset_id == dataset_id
    clause = stored_problem_clause(code)
    if clause is not None:
        return list(session.scalars(select(T.id).where(base, clause).order_by(T.position, T.id)))
    if code == "over_context_limit":
        info = resolve_model(model, settings)
        rows = current_snapshot(session, cache.snapshots, read_state(session, dataset_id), info, settings).rows
        limit = info.context_limit
        return sorted(i for i, row in rows.items() if row[VALID] and row[TOTAL] > limit)
    listed = session.execute(select(T.id, T.content_hash, T.split).where(base).order_by(T.position, T.id)).all()
    if code == "duplicate_example":
        first: set[str] = set()
        ids = []
        for row_id, content_hash, _ in listed:
            if content_hash in first:
                ids.append(row_id)
            first.add(content_hash)
        return ids
    leaked = {h for _, h, s in listed if s == "validation"}
    return [i for i, h, s in listed if s != "validation" and h in leaked]
