"""``/admin/users…``: account management for admins, forwarded to the auth service's ``/auth/admin/users…``.

The gateway refuses a caller without the ``admin`` role claim (403) before forwarding; the auth service checks the
role again against the stored account (a demoted admin's unexpired token is refused there). A role change reaches
the user's token at their next refresh; disabling or deleting an account takes effect at once: login and refresh
are refused, and the gateway refuses the user's unexpired access tokens (``UserDisabled`` / ``UserDeleted``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from llmts_api.admin import MAX_PAGE, AdminUserPage, AdminUserPublic, RoleUpdate
from llmts_api.errors import ErrorBody
from llmts_gateway.deps import AdminUser, Context

router = APIRouter(tags=["admin"])

UserId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The user's id (`sub`).")
]


def _errors(**cases: str) -> dict[int | str, dict[str, Any]]:
    return {int(k.lstrip("e")): {"model": ErrorBody, "description": v} for k, v in cases.items()}


_COMMON = {
    "e401": "Missing, malformed, expired or revoked access token.",
    "e403": "The caller is not an admin (`forbidden`).",
    "e503": "The auth service is unavailable.",
}
_ONE = {**_COMMON, "e404": "No such user (`not_found`).", "e422": "Malformed user id."}


async def _forward(ctx: Context, request: Request, path: str) -> Response:
    return await ctx.upstreams.forward("auth", request, path)


@router.get(
    "/admin/users",
    response_model=AdminUserPage,
    summary="List accounts, oldest first (admin)",
    responses=_errors(**_COMMON, e422=f"`offset` < 0 or `limit` outside 1…{MAX_PAGE}."),
)
async def list_users(
    _admin: AdminUser,
    request: Request,
    ctx: Context,
    _offset: Annotated[int, Query(alias="offset", ge=0, le=1_000_000)] = 0,
    _limit: Annotated[int, Query(alias="limit", ge=1, le=MAX_PAGE)] = 50,
) -> Response:
    return await _forward(ctx, request, "/auth/admin/users")


@router.get(
    "/admin/users/{user_id}",
    response_model=AdminUserPublic,
    summary="One account (admin)",
    responses=_errors(**_ONE),
)
async def get_user(user_id: UserId, _admin: AdminUser, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, f"/auth/admin/users/{user_id}")


@router.put(
    "/admin/users/{user_id}/role",
    response_model=AdminUserPublic,
    summary="Grant or revoke the admin role (effective at the user's next token refresh)",
    responses=_errors(**_ONE, e409="An admin cannot demote themselves (`cannot_change_self`)."),
)
async def set_role(
    user_id: UserId, _body: RoleUpdate, _admin: AdminUser, request: Request, ctx: Context
) -> Response:
    return await _forward(ctx, request, f"/auth/admin/users/{user_id}/role")


@router.post(
    "/admin/users/{user_id}/disable",
    response_model=AdminUserPublic,
    summary="Disable an account: no login or refresh, its access tokens refused at once",
    responses=_errors(**_ONE, e409="An admin cannot disable themselves (`cannot_change_self`)."),
)
async def disable_user(user_id: UserId, _admin: AdminUser, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, f"/auth/admin/users/{user_id}/disable")


@router.post(
    "/admin/users/{user_id}/enable",
    response_model=AdminUserPublic,
    summary="Enable a disabled account",
    responses=_errors(**_ONE),
)
async def enable_user(user_id: UserId, _admin: AdminUser, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, f"/auth/admin/users/{user_id}/enable")


@router.delete(
    "/admin/users/{user_id}",
    status_code=204,
    summary="Erase an account and all its data (every service forgets the user)",
    responses=_errors(**_ONE, e409="An admin cannot delete themselves here (`cannot_change_self`)."),
)
async def delete_user(user_id: UserId, _admin: AdminUser, request: Request, ctx: Context) -> Response:
    return await _forward(ctx, request, f"/auth/admin/users/{user_id}")
