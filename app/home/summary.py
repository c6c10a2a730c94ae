"""The home page: counts, recent jobs, and the getting-started path with the bundled sample dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from app.datasets.datasets import create_dataset
from app.datasets.examples import bulk_set_split
from app.datasets.importer import import_jsonl
from app.jobs import naming
from app.tables import Dataset, Example, Job, JobStatus, TunedModel

SAMPLE_FILE = Path(__file__).resolve().parents[1] / "sample_data" / "pirate_voice.jsonl"
SAMPLE_NAME = "Pirate voice (sample)"
SAMPLE_DESCRIPTION = (
    'Short answers that always start with "Arr," and end with "matey! ⚓" — fine-tune a '
    "local model on it, then compare it with the base model in the playground."
)
SAMPLE_VALIDATION = 3  # the last examples go to the validation split, so the loss chart has a validation curve


@dataclass
class HomeView:
    """What the home page shows."""

    datasets: int = 0
    examples: int = 0
    jobs: int = 0
    running: int = 0
    tuned_models: int = 0
    recent_jobs: list[Job] = field(default_factory=list)
    job_names: dict[str, str] = field(default_factory=dict)  # friendly names of the recent jobs, by id
    job_ages: dict[str, str] = field(default_factory=dict)  # "3 h ago", by id
    sample_dataset: Dataset | None = None
    first_tuned_model: str | None = None


def home_view(session: Session) -> HomeView:
    """Counts, the five newest jobs and where the getting-started path stands."""

    def count(query: SelectOfScalar[int]) -> int:
        return session.exec(query).one() or 0

    view = HomeView(
        datasets=count(select(func.count()).select_from(Dataset)),
        examples=count(select(func.count()).select_from(Example)),
        jobs=count(select(func.count()).select_from(Job)),
        running=count(select(func.count()).select_from(Job).where(Job.status == JobStatus.running.value)),
        tuned_models=count(select(func.count()).select_from(TunedModel).where(col(TunedModel.deleted_at).is_(None))),
    )
    view.recent_jobs = list(session.exec(select(Job).order_by(col(Job.created_at).desc()).limit(5)))
    view.job_names = naming.job_names(session, view.recent_jobs)
    view.job_ages = {j.id: naming.relative_time(j.created_at) for j in view.recent_jobs}
    view.sample_dataset = session.exec(select(Dataset).where(Dataset.name == SAMPLE_NAME)).first()
    model = session.exec(
        select(TunedModel).where(col(TunedModel.deleted_at).is_(None)).order_by(col(TunedModel.created_at).desc())
    ).first()
    view.first_tuned_model = model.id if model else None
    return view


def import_sample(session: Session) -> Dataset:
    """Create the sample dataset from the bundled JSONL (or return it when it already exists)."""
    existing = session.exec(select(Dataset).where(Dataset.name == SAMPLE_NAME)).first()
    if existing is not None:
        return existing
    dataset = create_dataset(session, SAMPLE_NAME, SAMPLE_DESCRIPTION)
    dataset_id = dataset.id
    assert dataset_id is not None  # committed and refreshed: the database gave it its id
    with SAMPLE_FILE.open("rb") as stream:
        import_jsonl(session, dataset_id, stream, filename=SAMPLE_FILE.name)
    ids = session.exec(
        select(Example.id)
        .where(Example.dataset_id == dataset_id)
        .order_by(col(Example.position).desc())
        .limit(SAMPLE_VALIDATION)
    ).all()
    bulk_set_split(session, dataset_id, list(ids), "validation")
    return dataset
