"""``UserDeleted`` in the generator, on fakes: the user's unfinished jobs are cancelled (flag + local runner, whose
end is awaited) before everything of the user is erased; a redelivery erases nothing more."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from llmts_common.contracts import UserDeleted
from llmts_generator.entrypoints.account_events import on_user_deleted

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class FakeStore:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {
            "a1": {"user_id": "ann", "status": "running"},
            "a2": {"user_id": "ann", "status": "completed"},
            "a3": {"user_id": "ann", "status": "queued"},
            "b1": {"user_id": "bob", "status": "running"},
        }
        self.items = {"a1": 3, "a2": 5, "b1": 2}
        self.cancel_flags: list[str] = []
        self.log: list[str] = []

    async def active_jobs(self, user_id: str) -> list[str]:
        return [k for k, j in self.jobs.items() if j["user_id"] == user_id and j["status"] != "completed"]

    async def erase(self, user_id: str) -> dict[str, int]:
        self.log.append("erase")
        ids = [k for k, j in self.jobs.items() if j["user_id"] == user_id]
        items = sum(self.items.pop(i, 0) for i in ids)
        for i in ids:
            del self.jobs[i]
        return {"jobs": len(ids), "items": items, "attempts": 0}

    async def request_cancel(self, job_id: str, reason: str, now: datetime) -> Any:
        self.cancel_flags.append(job_id)
        self.log.append(f"flag:{job_id}")
        return {"reason": reason}


class FakeManager:
    def __init__(self, running: set[str]) -> None:
        self.running = running
        self.cancelled: list[str] = []
        self.waited: list[str] = []

    def cancel_local(self, job_id: str, *, drain: bool = True) -> bool:
        assert (
            not drain
        )  # an erased account's calls are not awaited: nothing of it may be written after the erase
        if job_id in self.running:
            self.cancelled.append(job_id)
            return True
        return False

    async def wait(self, job_id: str, wait_s: float | None = None) -> str | None:
        self.waited.append(job_id)
        raise TimeoutError  # a runner that does not end in time does not stop the erase


async def test_unfinished_jobs_are_cancelled_then_everything_erased() -> None:
    store = FakeStore()
    manager = FakeManager(running={"a1", "b1"})
    event = UserDeleted(user_id="ann", deleted_at=NOW, by="self")
    erased = await on_user_deleted(event, erasure=store, repo=store, manager=manager, clock=lambda: NOW)
    assert erased == {"jobs": 3, "items": 8, "attempts": 0}
    assert sorted(store.cancel_flags) == ["a1", "a3"]
    assert manager.cancelled == ["a1"]
    assert manager.waited == ["a1"]
    assert store.log[-1] == "erase"  # cancels first
    assert set(store.jobs) == {"b1"}  # another user's job untouched
    again = await on_user_deleted(event, erasure=store, repo=store, manager=manager, clock=lambda: NOW)
    assert again == {"jobs": 0, "items": 0, "attempts": 0}
