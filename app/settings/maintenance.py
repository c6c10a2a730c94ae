"""The maintenance switch: while it is off, cancelling jobs and deleting models, checkpoints and files is refused.

One rule for every door: the services that cancel or delete (app.jobs.jobs.cancel_job and delete_tuned_model,
app.openai_api.files.delete_file) call require_maintenance() before they change anything, so the dashboard, /api
and /v1 all refuse alike; app/web/http_errors.py turns the Forbidden into a 403 in each door's shape (OpenAI's error
on /v1, {"detail", "code"} on /api, a flash message in the dashboard). Listing and reading are never blocked.

Where the value comes from: it is stored in the database and changed on the settings page or with
PUT /api/settings/maintenance. An installation that never stored it reads as off (the default, as in the notebook
Tuneboard grew from). TUNEBOARD_MAINTENANCE (Settings.maintenance), when given, is written as the stored value each
time the app starts; left unset, the stored value stands.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.config import Settings
from app.errors import Forbidden
from app.tables.settings_store import MAINTENANCE, get_value, set_value

MAINTENANCE_DISABLED = "maintenance_disabled"
HOW_TO_TURN_ON = (
    "To allow it, turn maintenance on in Settings (/settings#maintenance), with PUT /api/settings/maintenance "
    '{"enabled": true}, or by starting Tuneboard with TUNEBOARD_MAINTENANCE=1.'
)


def maintenance_enabled(session: Session) -> bool:
    """Whether cancel and delete are allowed now (False when nothing was ever stored)."""
    return get_value(session, MAINTENANCE, False) is True


def require_maintenance(session: Session, action: str) -> None:
    """Refuse `action` (e.g. "Cancelling job ftjob-1") with Forbidden(maintenance_disabled) while the switch is off."""
    if not maintenance_enabled(session):
        raise Forbidden(
            f"{action} is refused: maintenance is switched off, which keeps jobs, models, checkpoints and files from "
            f"being cancelled or deleted. {HOW_TO_TURN_ON}",
            code=MAINTENANCE_DISABLED,
        )


def set_maintenance(session: Session, enabled: bool) -> bool:
    """Store the switch (commits) and return it."""
    set_value(session, MAINTENANCE, bool(enabled))
    return bool(enabled)


def apply_configured_maintenance(settings: Settings, engine: Engine) -> None:
    """At start: write TUNEBOARD_MAINTENANCE as the stored value when it is given; otherwise keep the stored one."""
    if settings.maintenance is None:
        return
    with Session(engine) as session:
        if get_value(session, MAINTENANCE) is not settings.maintenance:
            set_maintenance(session, settings.maintenance)
