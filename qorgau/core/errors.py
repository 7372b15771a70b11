"""Errors every adapter (HTTP, web, CLI) knows how to present.

Messages name the *field*, never the value: a rejected IIN must not end up in a log line.
"""

from __future__ import annotations


class QorgauError(Exception):
    """Base class; ``code`` is stable (clients switch on it), ``message`` is for people."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "field": self.field}


class InvalidInput(QorgauError):
    code = "invalid_input"
    status = 422


class NotFound(QorgauError):
    code = "not_found"
    status = 404


class AuthenticationRequired(QorgauError):
    code = "unauthenticated"
    status = 401


class PermissionDenied(QorgauError):
    code = "forbidden"
    status = 403


class Conflict(QorgauError):
    code = "conflict"
    status = 409


class IntegrityFailure(QorgauError):
    """Stored data failed verification (tampered audit log, wrong key)."""

    code = "integrity_failure"
    status = 500
