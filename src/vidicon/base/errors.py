"""Errors raised by services; API layers translate them into status codes."""

from __future__ import annotations


class VidiconError(Exception):
    """Base class for errors a client can be told about."""

    code = "error"


class NotFound(VidiconError):
    code = "not_found"


class InvalidInput(VidiconError):
    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Conflict(VidiconError):
    code = "conflict"


class Unauthorized(VidiconError):
    code = "unauthorized"


class Forbidden(VidiconError):
    code = "forbidden"


class TooManyRequests(VidiconError):
    """Refused for now (sign-in lockout); ``retry_after_s`` says for how long."""

    code = "too_many_requests"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
