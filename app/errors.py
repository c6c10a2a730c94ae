"""Domain errors: what went wrong, in words and a stable code, and nothing about HTTP.

Every layer may raise them (the engine too). `app/web/http_errors.py` is the one place that turns them into
responses: OpenAI's error shape on /v1, `{"detail", "code"}` on /api, a page or flash message in the dashboard.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error raised on purpose. `code` is stable, `message` is for people."""

    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.details = details


class NotFound(DomainError):
    """The thing named does not exist (or is not visible)."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (a newer edit, a name already taken…)."""

    code = "conflict"


class Invalid(DomainError):
    """The input is wrong; `param` names the field when there is one."""

    code = "invalid_request"


class Forbidden(DomainError):
    """Allowed for nobody at the moment (a switch is off, a form came from elsewhere…)."""

    code = "forbidden"


class Unauthorized(DomainError):
    """No valid credentials."""

    code = "invalid_api_key"


class Upstream(DomainError):
    """Something Tuneboard relies on (OpenAI, a model) refused or failed; `retryable` says trying later may work."""

    code = "provider_error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        details: Any = None,
        retryable: bool | None = None,
    ):
        super().__init__(message, code=code, param=param, details=details)
        if retryable is not None:
            self.retryable = retryable


class Unavailable(Upstream):
    """Something Tuneboard relies on cannot be reached or is overloaded right now: trying again later may work."""

    code = "provider_unavailable"
    retryable = True
