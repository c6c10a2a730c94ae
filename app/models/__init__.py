"""SQLModel tables; importing this package registers them all on SQLModel.metadata (Alembic reads it)."""

from app.models.dataset import Dataset, DatasetCreate, DatasetUpdate, Example
from app.models.file import UploadedFile
from app.models.job import Checkpoint, Job, JobEvent, JobStatus, Snapshot, TunedModel
from app.models.settings_store import ApiKey, AppSetting, Conversation
from app.models.worker import WorkerRow

__all__ = [
    "ApiKey",
    "AppSetting",
    "Checkpoint",
    "Conversation",
    "Dataset",
    "DatasetCreate",
    "DatasetUpdate",
    "Example",
    "Job",
    "JobEvent",
    "JobStatus",
    "Snapshot",
    "TunedModel",
    "UploadedFile",
    "WorkerRow",
]
