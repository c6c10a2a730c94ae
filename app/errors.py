"""Domain errors raised by services; app/web/http_errors.py maps them to HTTP responses in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose. `code` is stable, `message` is for people."""

    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.details = details


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Invalid(DomainError):
    status_code = 400
    code = "invalid_request"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status_code = 401
    code = "invalid_api_key"
