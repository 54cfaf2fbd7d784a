"""Accounts: password change and erasure by the user, and user management by admins (``/admin/users…``).

Roles are ``user`` and ``admin``. A role change reaches the user's access token at their next refresh (a token
carries the role it was issued with); disabling or deleting an account takes effect at once (login and refresh
refused, unexpired access tokens refused by the gateway).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmts_api import examples as ex
from llmts_api.auth import MAX_PASSWORD_CHARS

Role = Literal["user", "admin"]
MAX_PAGE = 100


class ChangePasswordRequest(BaseModel):
    """Body of ``POST /auth/password``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.CHANGE_PASSWORD]})

    current_password: str | None = Field(
        default=None,
        max_length=MAX_PASSWORD_CHARS,
        description="Required when the account has a password; an account created through OAuth may omit it "
        "with an access token issued in the last 5 minutes.",
    )
    new_password: str = Field(
        max_length=MAX_PASSWORD_CHARS,
        description="At least 10 characters, not a common password, not the email address.",
        examples=["a new and long passphrase"],
    )


class DeleteAccountRequest(BaseModel):
    """Body of ``DELETE /auth/me``: the password; an account without one (OAuth only) may omit it (or the body)
    with an access token issued in the last 5 minutes."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.DELETE_ACCOUNT]})

    password: str | None = Field(default=None, max_length=MAX_PASSWORD_CHARS)


class AdminUserPublic(BaseModel):
    """An account as an admin sees it."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.ADMIN_USER]})

    id: str
    email: str = Field(examples=["ada@example.com"])
    name: str | None = None
    created_at: datetime
    role: Role = Field(description="`user` or `admin`.")
    disabled: bool = Field(description="A disabled account cannot log in and its tokens are refused.")
    has_password: bool = Field(description="False for an account created through OAuth only.")
    providers: list[str] = Field(default_factory=list, description="Linked OAuth providers.")


class AdminUserPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ex.ADMIN_USERS]})
    items: list[AdminUserPublic]
    total: int = Field(ge=0, description="Accounts in all (not erased).")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1, le=MAX_PAGE)


class RoleUpdate(BaseModel):
    """Body of ``PUT /admin/users/{id}/role``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.ROLE_UPDATE]})

    role: Role = Field(examples=["admin"])
