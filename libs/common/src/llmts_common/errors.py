"""Error types that map to the API's error body ``{"error": {"code", "message", "details", "correlation_id"}}``."""

from __future__ import annotations

from typing import Any

from llmts_common.logging import correlation_id_var


class AppError(Exception):
    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error body; ``correlation_id`` is the id of the request being answered (``None`` outside one)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "correlation_id": correlation_id_var.get(),
        }
    }


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="llmts"'})
        super().__init__(message, **kw)


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(AppError):
    status_code = 422
    code = "validation_error"


class InvalidField(Unprocessable):
    """A ``validation_error`` raised by hand, with details in the shape FastAPI gives every other invalid input:
    ``[{"loc": ["body", "count"], "msg": …, "type": …}]`` (``loc`` starts with ``body``, ``query`` or ``path``)."""

    def __init__(
        self, message: str, *, loc: tuple[str | int, ...], type: str = "value_error", **kw: Any
    ) -> None:
        kw.setdefault("details", [{"loc": list(loc), "msg": message, "type": type}])
        super().__init__(message, **kw)


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"


class UpstreamError(AppError):
    status_code = 502
    code = "upstream_error"
