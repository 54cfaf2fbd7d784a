"""Domain errors. The HTTP entrypoint maps each ``code`` to a status; nothing here knows HTTP."""

from __future__ import annotations

from typing import Any


class AuthError(Exception):
    code: str = "auth_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidEmail(AuthError):
    code = "invalid_email"


class WeakPassword(AuthError):
    code = "weak_password"


class EmailTaken(AuthError):
    code = "email_taken"


class InvalidCredentials(AuthError):
    """Same message whether the email exists or not."""

    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("invalid email or password")


class LoginThrottled(AuthError):
    code = "too_many_attempts"

    def __init__(self, retry_after: int, *, what: str = "failed login attempts") -> None:
        super().__init__(f"too many {what}; try again later", details={"retry_after": retry_after})
        self.retry_after = retry_after


class ServerBusy(AuthError):
    """Every password-hashing slot is taken and the queue is full: refused at once (429 + Retry-After)."""

    code = "server_busy"

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(
            "the server is busy checking passwords; try again shortly", details={"retry_after": retry_after}
        )
        self.retry_after = retry_after


class ConcurrentAttempts(ServerBusy):
    """More password checks in flight from this client address than allowed: refused at once (429)."""

    code = "too_many_concurrent_attempts"

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__(retry_after)
        self.message = "too many attempts at once from this address; retry after the current one"


class AccountDisabled(AuthError):
    """The account was disabled by an admin: no login, no refresh, no token honoured."""

    code = "account_disabled"


class NotAdmin(AuthError):
    code = "forbidden"


class ReauthenticationRequired(AuthError):
    """A sensitive operation needs the current password (or, for accounts without one, a recent login)."""

    code = "reauthentication_required"


class CannotChangeSelf(AuthError):
    """An admin may not disable, delete or demote their own account through the admin API (no lock-out)."""

    code = "cannot_change_self"


class InvalidRefreshToken(AuthError):
    code = "invalid_refresh_token"


class RefreshTokenReused(InvalidRefreshToken):
    code = "refresh_token_reused"


class UserNotFound(AuthError):
    code = "user_not_found"


class AccountNotFound(AuthError):
    """An admin named an account that does not exist (404; ``UserNotFound`` is the caller's own, 401)."""

    code = "not_found"


class UnknownProvider(AuthError):
    code = "unknown_provider"


class ProviderNotConfigured(AuthError):
    code = "provider_not_configured"


class OAuthStateInvalid(AuthError):
    code = "invalid_state"


class OAuthMissingCode(AuthError):
    code = "missing_code"


class OAuthDenied(AuthError):
    """The provider redirected back with ``error=…`` (user denied consent, …)."""

    code = "oauth_denied"


class OAuthExchangeFailed(AuthError):
    """The provider rejected the code exchange or answered something unusable."""

    code = "oauth_exchange_failed"


class InvalidIdToken(AuthError):
    code = "invalid_id_token"


class EmailNotVerified(AuthError):
    code = "email_not_verified"


class ProviderUnavailable(AuthError):
    code = "provider_unavailable"
