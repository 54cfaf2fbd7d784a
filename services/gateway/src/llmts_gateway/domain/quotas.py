"""Per-user quotas and spend budgets at admission: the rules, free of storage.

One ledger per user (:class:`Ledger`) holds the counters of the current periods and the open reservations of its
jobs. Money is counted in integer micro-USD, so reservations and settlements add up exactly.

- **Limits** (:class:`Limits`): defaults from settings, each overridable per user by an admin: items per job,
  jobs queued + running, items per UTC day, and a USD budget per period (``day``, ``week`` — ISO, from Monday —
  or ``month``, UTC calendar).
- **Reserve** at admission: a job holds its estimated upper cost (``reserved``) and its items; the budget's
  ``committed`` (settled spend of the period + open reservations) may not pass the budget. A free or unpriced model
  reserves 0 and counts only items and jobs. A batch is admitted all-or-nothing (one ledger update).
- **Settle** when the job ends (completed, failed or cancelled): its reservation is replaced by the billed cost and
  the items it did not produce go back to today's count (when it was admitted today). Settling twice changes
  nothing (the reservation is gone after the first).
- **Roll over**: a new day clears today's items; a new budget period clears the settled spend; reservations of jobs
  still running stay committed and settle into the period in which they end.
- **Refuse** with 402 ``budget_exceeded`` (money) or 429 ``quota_exceeded`` (volume, concurrency), details
  ``{limit, used, requested, remaining, period_resets_at}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from llmts_common.errors import AppError
from llmts_common.times import iso_z

Period = Literal["day", "week", "month"]
MICROS = 1_000_000


def to_micros(usd: float) -> int:
    """USD → micro-USD, rounded up (a reservation never falls short of its estimate by rounding)."""
    return max(0, math.ceil(round(usd * MICROS, 3)))


def to_usd(micros: int) -> float:
    return round(micros / MICROS, 6)


# ------------------------------------------------------------------------------------------------ periods
def day_key(now: datetime) -> str:
    return now.astimezone(UTC).date().isoformat()


def period_start(now: datetime, period: Period) -> datetime:
    day = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def period_key(now: datetime, period: Period) -> str:
    return f"{period}:{period_start(now, period).date().isoformat()}"


def period_resets_at(now: datetime, period: Period) -> datetime:
    start = period_start(now, period)
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


# ------------------------------------------------------------------------------------------------ limits
LIMIT_FIELDS = ("max_items_per_job", "max_active_jobs", "max_items_per_day", "budget_usd")


@dataclass(frozen=True)
class Limits:
    max_items_per_job: int
    max_active_jobs: int
    max_items_per_day: int
    budget_usd: float
    budget_period: Period = "month"

    @property
    def budget_micros(self) -> int:
        return math.floor(round(self.budget_usd * MICROS, 3))

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Limits:
        """These limits with an admin's overrides (a missing or null field keeps the default)."""
        values = {k: v for k, v in (overrides or {}).items() if k in LIMIT_FIELDS and v is not None}
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_items_per_job": self.max_items_per_job,
            "max_active_jobs": self.max_active_jobs,
            "max_items_per_day": self.max_items_per_day,
            "budget_usd": self.budget_usd,
            "budget_period": self.budget_period,
        }


# ------------------------------------------------------------------------------------------------ ledger
@dataclass(frozen=True)
class Reservation:
    """What one job holds while it is queued or running."""

    job_id: str
    micros: int
    items: int
    day: str = ""
    at: datetime | None = None

    def to_doc(self) -> dict[str, Any]:
        return {"micros": self.micros, "items": self.items, "day": self.day, "at": self.at}


@dataclass(frozen=True)
class Ledger:
    """A user's counters (``period``/``day``: the keys they count for) and open reservations by job id."""

    user_id: str
    period: str = ""
    day: str = ""
    spent_micros: int = 0
    reserved_micros: int = 0
    day_items: int = 0
    active_jobs: int = 0
    jobs: dict[str, Reservation] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def committed_micros(self) -> int:
        return self.spent_micros + self.reserved_micros

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Ledger:
        jobs = {
            job_id: Reservation(
                job_id, int(r.get("micros", 0)), int(r.get("items", 0)), str(r.get("day", "")), r.get("at")
            )
            for job_id, r in (doc.get("jobs") or {}).items()
            if isinstance(r, Mapping)
        }
        return cls(
            user_id=str(doc["_id"]),
            period=str(doc.get("period", "")),
            day=str(doc.get("day", "")),
            spent_micros=int(doc.get("spent_micros", 0)),
            reserved_micros=int(doc.get("reserved_micros", 0)),
            day_items=int(doc.get("day_items", 0)),
            active_jobs=int(doc.get("active_jobs", 0)),
            jobs=jobs,
            overrides=dict(doc.get("overrides") or {}),
        )


def rolled_over(ledger: Ledger, now: datetime, period: Period) -> Ledger:
    """The ledger as it counts at ``now``: a new day clears today's items, a new period the settled spend."""
    pkey, dkey = period_key(now, period), day_key(now)
    if ledger.period == pkey and ledger.day == dkey:
        return ledger
    return replace(
        ledger,
        period=pkey,
        day=dkey,
        spent_micros=ledger.spent_micros if ledger.period == pkey else 0,
        day_items=ledger.day_items if ledger.day == dkey else 0,
    )


@dataclass(frozen=True)
class Ask:
    """An admission: the jobs to reserve (a batch is one ask)."""

    reservations: tuple[Reservation, ...]

    @property
    def micros(self) -> int:
        return sum(r.micros for r in self.reservations)

    @property
    def items(self) -> int:
        return sum(r.items for r in self.reservations)

    @property
    def jobs(self) -> int:
        return len(self.reservations)


def check_items_per_job(items: int, limits: Limits) -> None:
    """One job's items against the per-job limit (429 ``items_per_job``)."""
    if items > limits.max_items_per_job:
        raise QuotaExceeded(
            f"a job may ask for at most {limits.max_items_per_job} items",
            limit="items_per_job",
            used=0,
            requested=items,
            remaining=limits.max_items_per_job,
            resets_at=None,
        )


def refusal(ledger: Ledger, ask: Ask, limits: Limits, now: datetime) -> AppError | None:
    """Why ``ask`` cannot be admitted on this (rolled-over) ledger, or ``None`` when it fits every limit."""
    if ledger.active_jobs + ask.jobs > limits.max_active_jobs:
        return QuotaExceeded(
            f"at most {limits.max_active_jobs} jobs may be queued or running at once",
            limit="active_jobs",
            used=ledger.active_jobs,
            requested=ask.jobs,
            remaining=max(0, limits.max_active_jobs - ledger.active_jobs),
            resets_at=None,
        )
    if ledger.day_items + ask.items > limits.max_items_per_day:
        return QuotaExceeded(
            f"at most {limits.max_items_per_day} items may be generated per day",
            limit="items_per_day",
            used=ledger.day_items,
            requested=ask.items,
            remaining=max(0, limits.max_items_per_day - ledger.day_items),
            resets_at=period_resets_at(now, "day"),
        )
    if ask.micros > 0 and ledger.committed_micros + ask.micros > limits.budget_micros:
        return BudgetExceeded(
            f"the job's estimated cost does not fit the budget of {limits.budget_usd} USD per "
            f"{limits.budget_period}",
            used=to_usd(ledger.committed_micros),
            requested=to_usd(ask.micros),
            remaining=to_usd(max(0, limits.budget_micros - ledger.committed_micros)),
            resets_at=period_resets_at(now, limits.budget_period),
        )
    return None


def admitted(ledger: Ledger, ask: Ask) -> Ledger:
    """The ledger holding ``ask``'s reservations (an in-memory reference of the store's atomic update)."""
    jobs = dict(ledger.jobs)
    jobs.update({r.job_id: r for r in ask.reservations})
    return replace(
        ledger,
        reserved_micros=ledger.reserved_micros + ask.micros,
        day_items=ledger.day_items + ask.items,
        active_jobs=ledger.active_jobs + ask.jobs,
        jobs=jobs,
    )


@dataclass(frozen=True)
class Settlement:
    """What settling one job changes: the counters' increments (``None``: nothing to settle)."""

    job_id: str
    reserved: Reservation
    spent_micros: int
    items_back: int


def settlement(ledger: Ledger, job_id: str, *, cost_usd: float, produced: int) -> Settlement | None:
    """Replace the job's reservation by its billed cost; give back the items it did not produce when it was
    admitted on the ledger's day. ``None`` when the job holds nothing (unknown or already settled)."""
    held = ledger.jobs.get(job_id)
    if held is None:
        return None
    items_back = max(0, held.items - max(0, produced)) if held.day == ledger.day else 0
    return Settlement(job_id, held, to_micros(cost_usd), items_back)


def settled(ledger: Ledger, s: Settlement) -> Ledger:
    jobs = {k: v for k, v in ledger.jobs.items() if k != s.job_id}
    return replace(
        ledger,
        spent_micros=ledger.spent_micros + s.spent_micros,
        reserved_micros=ledger.reserved_micros - s.reserved.micros,
        day_items=max(0, ledger.day_items - s.items_back),
        active_jobs=max(0, ledger.active_jobs - 1),
        jobs=jobs,
    )


# ------------------------------------------------------------------------------------------------ refusals
class QuotaExceeded(AppError):
    """429: a volume or concurrency limit."""

    status_code = 429
    code = "quota_exceeded"

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        used: float,
        requested: float,
        remaining: float,
        resets_at: datetime | None,
    ) -> None:
        details = {
            "limit": limit,
            "used": used,
            "requested": requested,
            "remaining": remaining,
            "period_resets_at": iso_z(resets_at) if resets_at else None,
        }
        headers = {}
        if resets_at is not None:
            headers["Retry-After"] = "60"
        super().__init__(message, details=details, headers=headers)


class BudgetExceeded(QuotaExceeded):
    """402: the spend budget."""

    status_code = 402
    code = "budget_exceeded"

    def __init__(
        self, message: str, *, used: float, requested: float, remaining: float, resets_at: datetime
    ) -> None:
        super().__init__(
            message,
            limit="budget_usd",
            used=used,
            requested=requested,
            remaining=remaining,
            resets_at=resets_at,
        )
        self.headers = {}


# ------------------------------------------------------------------------------------------------ views
def usage_view(ledger: Ledger, limits: Limits, now: datetime) -> dict[str, Any]:
    """``GET /me/usage`` (``llmts_api.usage.UsagePublic``) from a rolled-over ledger."""
    committed = ledger.committed_micros
    return {
        "user_id": ledger.user_id,
        "limits": limits.to_dict(),
        "budget": {
            "limit": limits.budget_usd,
            "used": to_usd(committed),
            "remaining": to_usd(max(0, limits.budget_micros - committed)),
            "resets_at": period_resets_at(now, limits.budget_period),
            "spent_usd": to_usd(ledger.spent_micros),
            "reserved_usd": to_usd(ledger.reserved_micros),
            "period": limits.budget_period,
        },
        "items_today": {
            "limit": limits.max_items_per_day,
            "used": ledger.day_items,
            "remaining": max(0, limits.max_items_per_day - ledger.day_items),
            "resets_at": period_resets_at(now, "day"),
        },
        "active_jobs": {
            "limit": limits.max_active_jobs,
            "used": ledger.active_jobs,
            "remaining": max(0, limits.max_active_jobs - ledger.active_jobs),
            "resets_at": None,
        },
        "open_jobs": [
            {
                "job_id": r.job_id,
                "reserved_usd": to_usd(r.micros),
                "items": r.items,
                "reserved_at": r.at or now,
            }
            for r in sorted(ledger.jobs.values(), key=lambda r: r.job_id)
        ],
    }
