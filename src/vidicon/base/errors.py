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
