"""Reading a JSON request body by hand (routes that take free-form JSON), refusing what json cannot parse."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.errors import Invalid


async def read_json(request: Request, what: str = "the request") -> Any:
    """The body as JSON; malformed or absurdly nested JSON (json recurses per level) is refused with Invalid."""
    try:
        return await request.json()
    except ValueError:
        raise Invalid(f"Send {what} as JSON.") from None
    except RecursionError:
        raise Invalid(f"Could not read {what}: its JSON nests too deeply.") from None
