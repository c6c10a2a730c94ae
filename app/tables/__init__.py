"""SQLModel tables; importing this package registers them all on SQLModel.metadata (Alembic reads it)."""

from app.tables.dataset import Dataset, Example
from app.tables.evals import Eval, EvalRun, EvalRunItem, EvalRunStatus, PairwiseReview, PairwiseVote
from app.tables.file import UploadedFile
from app.tables.job import Checkpoint, Job, JobEvent, JobStatus, Snapshot, TunedModel
from app.tables.revision import DatasetRevision
from app.tables.settings_store import ApiKey, AppSetting, Conversation
from app.tables.worker import WorkerRow

__all__ = [
    "ApiKey",
    "AppSetting",
    "Checkpoint",
    "Conversation",
    "Dataset",
    "DatasetRevision",
    "Eval",
    "EvalRun",
    "EvalRunItem",
    "EvalRunStatus",
    "Example",
    "Job",
    "JobEvent",
    "JobStatus",
    "PairwiseReview",
    "PairwiseVote",
    "Snapshot",
    "TunedModel",
    "UploadedFile",
    "WorkerRow",
]
