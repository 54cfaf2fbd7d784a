"""``/me/usage`` and ``/admin/users/{user_id}/quota``: per-user quotas and spend budgets.

- ``GET /me/usage``: the caller's use vs limits (budget: spent + reserved of the period; items today; jobs
  queued + running; the open reservations).
- ``GET/PUT/DELETE /admin/users/{user_id}/quota`` (admin role): a user's overrides of the default limits.

Admission itself (402 ``budget_exceeded`` / 429 ``quota_exceeded``) happens in ``POST /generate`` and
``/generate/batch``; the rules are in ``llmts_gateway.domain.quotas``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from llmts_api.usage import QuotaOverride, QuotaPublic, UsagePublic
from llmts_gateway import handlers
from llmts_gateway.deps import AdminUser, CurrentUser, Jobs

router = APIRouter(tags=["usage"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token."},
    503: {"description": "The usage ledger is unreachable."},
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"description": "The caller is not an admin."},
    422: {"description": "Invalid user id or override."},
}
UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")]


@router.get(
    "/me/usage",
    response_model=UsagePublic,
    summary="My use of my quotas: budget spent + reserved, items today, active jobs, open reservations",
    responses=ERRORS,
)
async def my_usage(jobs: Jobs, user: CurrentUser) -> UsagePublic:
    return await handlers.my_usage(user.user_id, deps=jobs)


@router.get(
    "/admin/users/{user_id}/quota",
    response_model=QuotaPublic,
    summary="A user's quota overrides and effective limits (admin)",
    responses=ADMIN_ERRORS,
)
async def get_quota(user_id: UserId, jobs: Jobs, _admin: AdminUser) -> QuotaPublic:
    return await handlers.get_quota(user_id, deps=jobs)


@router.put(
    "/admin/users/{user_id}/quota",
    response_model=QuotaPublic,
    summary="Set a user's quota overrides (admin); absent fields keep the defaults",
    responses=ADMIN_ERRORS,
)
async def put_quota(user_id: UserId, body: QuotaOverride, jobs: Jobs, _admin: AdminUser) -> QuotaPublic:
    return await handlers.set_quota(user_id, body, deps=jobs)


@router.delete(
    "/admin/users/{user_id}/quota",
    response_model=QuotaPublic,
    summary="Remove a user's quota overrides (admin): the defaults apply again",
    responses=ADMIN_ERRORS,
)
async def delete_quota(user_id: UserId, jobs: Jobs, _admin: AdminUser) -> QuotaPublic:
    return await handlers.set_quota(user_id, QuotaOverride(), deps=jobs)
