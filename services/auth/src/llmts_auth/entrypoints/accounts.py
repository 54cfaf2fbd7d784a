"""HTTP routes on accounts: ``POST /auth/password``, ``DELETE /auth/me`` and the admin's ``/auth/admin/users…``
(reached as ``/admin/users…`` through the gateway, which checks the role claim first; here the role is checked
again against the stored account, so a demoted admin's unexpired token no longer works)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from llmts_api.admin import (
    MAX_PAGE,
    AdminUserPage,
    AdminUserPublic,
    ChangePasswordRequest,
    DeleteAccountRequest,
    RoleUpdate,
)
from llmts_api.auth import TokenPairPublic
from llmts_auth import accounts
from llmts_auth.accounts import Guard
from llmts_auth.domain.commands import ChangePassword, DeleteAccount
from llmts_auth.domain.users import User
from llmts_auth.entrypoints.http import (
    NO_STORE,
    PASSWORD_CHECK,
    Context,
    CurrentUser,
    client_ip,
    token_pair_public,
)
from llmts_common.auth import Principal

router = APIRouter(tags=["accounts"])

UserId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _guard(ctx: Context) -> Guard:
    return Guard(hasher=ctx.hasher, throttle=ctx.throttle, policy=ctx.throttle_policy)


def _issued_at(principal: Principal) -> datetime:
    return datetime.fromtimestamp(int(principal.claims.get("iat", 0)), tz=UTC)


def admin_view(user: User) -> AdminUserPublic:
    return AdminUserPublic(
        id=user.id,
        email=user.email,
        name=user.name,
        created_at=user.created_at,
        role=user.role,
        disabled=user.disabled,
        has_password=bool(user.password_hash),
        providers=sorted({i.provider for i in user.identities}),
    )


@router.post(
    "/auth/password",
    response_model=TokenPairPublic,
    summary="Change the password",
    dependencies=PASSWORD_CHECK,
)
async def change_password(
    body: ChangePasswordRequest, principal: CurrentUser, request: Request, ctx: Context
) -> JSONResponse:
    pair = await accounts.change_password(
        ChangePassword(
            user_id=principal.user_id,
            current_password=body.current_password,
            new_password=body.new_password,
            token_issued_at=_issued_at(principal),
            client_ip=client_ip(request, ctx.settings.trusted_networks),
        ),
        users=ctx.users,
        guard=_guard(ctx),
        tokens=ctx.tokens,
        clock=ctx.clock,
    )
    return JSONResponse(token_pair_public(pair).model_dump(), headers=NO_STORE)


@router.delete(
    "/auth/me",
    status_code=204,
    summary="Erase the current account and all its data",
    dependencies=PASSWORD_CHECK,
)
async def delete_me(
    principal: CurrentUser,
    request: Request,
    ctx: Context,
    body: Annotated[DeleteAccountRequest | None, Body()] = None,
) -> Response:
    await accounts.delete_account(
        DeleteAccount(
            user_id=principal.user_id,
            password=body.password if body else None,
            token_issued_at=_issued_at(principal),
            client_ip=client_ip(request, ctx.settings.trusted_networks),
        ),
        users=ctx.users,
        refresh_tokens=ctx.refresh_tokens,
        guard=_guard(ctx),
        clock=ctx.clock,
    )
    return Response(status_code=204)


# --- admin ----------------------------------------------------------------------------------------------------


@router.get("/auth/admin/users", response_model=AdminUserPage, summary="List accounts (admin)")
async def list_users(
    principal: CurrentUser,
    ctx: Context,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> AdminUserPage:
    rows, total = await accounts.list_users(principal.user_id, users=ctx.users, offset=offset, limit=limit)
    return AdminUserPage(items=[admin_view(u) for u in rows], total=total, offset=offset, limit=limit)


@router.get("/auth/admin/users/{user_id}", response_model=AdminUserPublic, summary="One account (admin)")
async def get_user(user_id: UserId, principal: CurrentUser, ctx: Context) -> AdminUserPublic:
    return admin_view(await accounts.get_user(principal.user_id, user_id, users=ctx.users))


@router.put(
    "/auth/admin/users/{user_id}/role", response_model=AdminUserPublic, summary="Set the role (admin)"
)
async def set_role(
    user_id: UserId, body: RoleUpdate, principal: CurrentUser, ctx: Context
) -> AdminUserPublic:
    return admin_view(await accounts.set_role(principal.user_id, user_id, body.role, users=ctx.users))


async def _set_disabled(user_id: str, disabled: bool, principal: Principal, ctx: Context) -> AdminUserPublic:
    user = await accounts.set_disabled(
        principal.user_id,
        user_id,
        disabled,
        users=ctx.users,
        refresh_tokens=ctx.refresh_tokens,
        clock=ctx.clock,
    )
    return admin_view(user)


@router.post("/auth/admin/users/{user_id}/disable", response_model=AdminUserPublic, summary="Disable (admin)")
async def disable(user_id: UserId, principal: CurrentUser, ctx: Context) -> AdminUserPublic:
    return await _set_disabled(user_id, True, principal, ctx)


@router.post("/auth/admin/users/{user_id}/enable", response_model=AdminUserPublic, summary="Enable (admin)")
async def enable(user_id: UserId, principal: CurrentUser, ctx: Context) -> AdminUserPublic:
    return await _set_disabled(user_id, False, principal, ctx)


@router.delete("/auth/admin/users/{user_id}", status_code=204, summary="Erase an account (admin)")
async def delete_user(user_id: UserId, principal: CurrentUser, ctx: Context) -> Response:
    await accounts.admin_delete(
        principal.user_id, user_id, users=ctx.users, refresh_tokens=ctx.refresh_tokens, clock=ctx.clock
    )
    return Response(status_code=204)
