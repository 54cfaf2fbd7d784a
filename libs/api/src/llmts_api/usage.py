"""Per-user quotas and spend budgets: the limits, an admin's overrides and a user's use of them.

Used by the gateway's ``GET /me/usage`` and ``GET/PUT/DELETE /admin/users/{user_id}/quota``. A refusal at
admission is an error body (402 ``budget_exceeded``, 429 ``quota_exceeded``) whose ``details`` is
:class:`QuotaRefusal`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llmts_api import examples as ex

QuotaPeriod = Literal["day", "week", "month"]
LimitName = Literal["items_per_job", "active_jobs", "items_per_day", "budget_usd"]


class QuotaLimits(BaseModel):
    """The limits that apply to one user (the defaults with the user's overrides applied)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.QUOTA_LIMITS]})

    max_items_per_job: int = Field(ge=0, description="Items one job may ask for.")
    max_active_jobs: int = Field(ge=0, description="Jobs queued + running at once.")
    max_items_per_day: int = Field(ge=0, description="Items admitted per UTC day.")
    budget_usd: float = Field(
        ge=0, description="USD that may be spent (reserved + settled) per budget period."
    )
    budget_period: QuotaPeriod = Field(
        description="The budget's period (UTC calendar day, ISO week or month)."
    )


class QuotaOverride(BaseModel):
    """An admin's per-user overrides; an absent (or null) field keeps the default."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ex.QUOTA_OVERRIDE]})

    max_items_per_job: int | None = Field(default=None, ge=0, le=10_000_000)
    max_active_jobs: int | None = Field(default=None, ge=0, le=100_000)
    max_items_per_day: int | None = Field(default=None, ge=0, le=1_000_000_000)
    budget_usd: float | None = Field(default=None, ge=0, le=1_000_000)


class QuotaPublic(BaseModel):
    """A user's overrides and the limits that result."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.QUOTA]})

    user_id: str
    overrides: QuotaOverride
    effective: QuotaLimits


class OpenReservation(BaseModel):
    job_id: str
    reserved_usd: float = Field(ge=0, description="The job's estimated upper cost, held until the job ends.")
    items: int = Field(ge=0)
    reserved_at: datetime


class UsageCounter(BaseModel):
    limit: float = Field(ge=0)
    used: float = Field(ge=0)
    remaining: float = Field(ge=0)
    resets_at: datetime | None = Field(default=None, description="When the counter starts over (UTC).")


class UsageBudget(UsageCounter):
    spent_usd: float = Field(ge=0, description="Settled cost of this period's billed attempts.")
    reserved_usd: float = Field(ge=0, description="Held by jobs still queued or running.")
    period: QuotaPeriod


class UsagePublic(BaseModel):
    """``GET /me/usage``: use vs limits. ``used`` of the budget is spent + reserved."""

    model_config = ConfigDict(json_schema_extra={"examples": [ex.USAGE_REPORT]})

    user_id: str
    limits: QuotaLimits
    budget: UsageBudget
    items_today: UsageCounter
    active_jobs: UsageCounter
    open_jobs: list[OpenReservation]


class QuotaRefusal(BaseModel):
    """``details`` of a 402/429 refusal at admission: which limit, what is used, asked and left."""

    limit: LimitName
    used: float
    requested: float
    remaining: float
    period_resets_at: datetime | None = None
