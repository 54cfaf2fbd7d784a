"""Error examples of the gateway's OpenAPI document for answers whose route gives none (see ``openapi``).

``NAMED_ERRORS``: a code a route's description names in backticks (``(`email_taken`)``) is shown with the status,
message and details the API answers with; ``DEFAULT_ERRORS``: otherwise, the usual error of each status. The
codes are those of ``docs/errors.md``.
"""

from __future__ import annotations

from typing import Any

_VALIDATION_DETAILS = [
    {
        "loc": ["body", "count"],
        "msg": "Input should be greater than or equal to 1",
        "type": "greater_than_equal",
    }
]

# status → (code, message, details): the example of an error answer whose route gives none.
DEFAULT_ERRORS: dict[int, tuple[str, str, Any]] = {
    400: ("bad_request", "the request is malformed", None),
    401: ("unauthorized", "missing bearer token", None),
    402: (
        "budget_exceeded",
        "the job's estimated cost does not fit your budget",
        {
            "limit": 5.0,
            "used": 4.9,
            "requested": 0.3,
            "remaining": 0.1,
            "period_resets_at": "2026-12-07T00:00:00Z",
        },
    ),
    403: ("forbidden", "this operation needs the admin role", {"required_role": "admin"}),
    404: ("not_found", "not found", None),
    409: ("conflict", "the resource was changed concurrently; reload and retry", None),
    413: ("payload_too_large", "request body larger than 1048576 bytes", None),
    422: (
        "validation_error",
        "invalid request: count: Input should be greater than or equal to 1",
        _VALIDATION_DETAILS,
    ),
    429: ("rate_limited", "too many requests; retry later", {"retry_after": 30}),
    502: ("upstream_error", "the provider is unreachable", None),
    503: ("service_unavailable", "a service behind the gateway is unavailable", None),
}

_RETRY = {"retry_after": 30}
# code → (status, message, details)
NAMED_ERRORS: dict[str, tuple[int, str, Any]] = {
    "unauthorized": (401, "missing bearer token", None),
    "invalid_token": (401, "the access token has expired", None),
    "invalid_credentials": (401, "invalid email or password", None),
    "invalid_refresh_token": (401, "invalid or expired refresh token", None),
    "refresh_token_reused": (401, "refresh token already used: every session of this login is revoked", None),
    "user_not_found": (401, "the token's user no longer exists", None),
    "invalid_state": (400, "invalid or expired OAuth state", None),
    "missing_code": (400, "the provider sent no authorization code", None),
    "oauth_denied": (400, "the provider denied the login", {"error": "access_denied"}),
    "oauth_exchange_failed": (400, "the provider refused the code exchange", None),
    "forbidden": (403, "this operation needs the admin role", {"required_role": "admin"}),
    "account_disabled": (403, "the account is disabled", None),
    "reauthentication_required": (403, "give your current password to do this", None),
    "email_not_verified": (403, "the provider did not confirm a verified email address", None),
    "not_found": (404, "account not found", None),
    "unknown_provider": (404, "unknown OAuth provider 'gitlab'", None),
    "email_taken": (409, "an account with this email already exists", None),
    "cannot_change_self": (409, "an admin cannot disable, delete or demote their own account here", None),
    "invalid_email": (422, "email address is not valid", {"field": "email"}),
    "weak_password": (
        422,
        "password must be at least 10 characters long",
        {"field": "password", "reason": "too_short", "min_length": 10},
    ),
    "too_many_attempts": (429, "too many failed login attempts; try again later", _RETRY),
    "server_busy": (429, "the server is busy checking passwords; try again shortly", {"retry_after": 1}),
    "provider_unavailable": (502, "github is unreachable", {"error": "ConnectTimeout"}),
    "provider_not_configured": (503, "OAuth provider 'github' is not configured on this server", None),
}
