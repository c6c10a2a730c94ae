"""/api/settings: the maintenance switch for scripts (bearer key), the same stored value the settings page shows."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictBool

from app.settings.maintenance import maintenance_enabled, set_maintenance
from app.web.rendering import SessionDep

router = APIRouter(prefix="/api/settings", tags=["settings"])


class MaintenanceSwitch(BaseModel):
    """The maintenance switch: while off, cancel and delete of jobs, models, checkpoints and files are refused."""

    enabled: StrictBool = Field(description="true: cancelling and deleting are allowed; false: refused with 403.")


@router.get("/maintenance", response_model=MaintenanceSwitch)
def get_maintenance(session: SessionDep) -> MaintenanceSwitch:
    """Whether maintenance is on (cancel and delete allowed)."""
    return MaintenanceSwitch(enabled=maintenance_enabled(session))


@router.put("/maintenance", response_model=MaintenanceSwitch)
def put_maintenance(body: MaintenanceSwitch, session: SessionDep) -> MaintenanceSwitch:
    """Turn maintenance on or off (until changed again, or until a start with TUNEBOARD_MAINTENANCE set)."""
    return MaintenanceSwitch(enabled=set_maintenance(session, body.enabled))
