"""The one application error type. Services raise it; the DRF exception handler and the HTML views
turn it into a response. Messages tell the user what to fix."""

from typing import Any


class SynthLabError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        status_code: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status_code:
            self.status_code = status_code
        self.details = details or []

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationFailed(SynthLabError):
    code = "invalid"


class NotFound(SynthLabError):
    status_code = 404
    code = "not_found"

    def __init__(self, message: str = "Not found.", **kwargs):
        super().__init__(message, **kwargs)


class Forbidden(SynthLabError):
    status_code = 403
    code = "forbidden"


class Conflict(SynthLabError):
    status_code = 409
    code = "conflict"


class ServiceUnavailable(SynthLabError):
    status_code = 503
    code = "unavailable"
