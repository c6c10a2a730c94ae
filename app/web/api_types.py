"""Types the routes share: integer parameters bounded to what the database can hold, and UTC times.

SQLite's INTEGER (and PostgreSQL's bigint) stop at MAX_DB_INT (2**63 - 1); a larger Python int makes the driver
raise OverflowError, a server error. Bounding ids, offsets and cursors here turns a 30-digit value into a 422 (400 on
/v1) naming the parameter, before any service runs, and writes the bounds into the OpenAPI schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Form, Path, Query
from pydantic import AfterValidator, Field

from app.tables.common import MAX_DB_INT

# A row id in the URL path (datasets, examples, API keys…).
DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="A positive integer id.")]
# A row id given as a query parameter, optional (a filter).
DbIdQuery = Annotated[int | None, Query(ge=1, le=MAX_DB_INT, description="A positive integer id.")]
# A row id in a form.
DbIdForm = Annotated[int, Form(ge=1, le=MAX_DB_INT)]
# A row id in a JSON body.
DbIdField = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
# How many rows to skip (a page's start), in the query or posted by a form.
Offset = Annotated[int, Query(ge=0, le=MAX_DB_INT, description="How many rows to skip.")]
OffsetForm = Annotated[int, Form(ge=0, le=MAX_DB_INT)]
# A sequence number to read after (events' `seq`), optional.
SeqQuery = Annotated[int | None, Query(ge=0, le=MAX_DB_INT, description="Only what comes after this seq.")]


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# A time as the database stores it (naive, in UTC), written with its offset ("…Z") as an OpenAPI date-time must be.
UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]
