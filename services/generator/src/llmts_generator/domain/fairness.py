"""Who gets the next provider call and the next job start when several users compete (pure, no I/O).

**Calls** (:class:`FairQueue`): every running job of the process draws its provider calls from one limiter per
provider. When a permit frees up it goes to the waiting **user** that holds the fewest permits of that provider
(ties: the user served least recently — a round robin among equals), then, within that user, to the waiting
**job** that holds the fewest (same tie rule). Each user therefore gets an equal share of the provider's capacity
(max-min fair: a user that needs less than its share keeps what it needs and the rest goes to the others), and a
user's share is split equally between its jobs. The policy is work-conserving: a user alone gets everything.

The bound this gives: a user that starts waiting while others hold permits is granted one at the next grant, or
behind the other users that hold as few permits as it does and waited before it — at most one grant per competing
user, whatever their backlogs (jobs, waiting calls). Then it keeps being preferred while it holds fewer permits
than the others, so it reaches its fair share within that many grants.

**Jobs** (:func:`admit` and :func:`pick_admissions`): a process runs at most ``max_jobs`` jobs and at most
``per_user`` of one user; queued jobs are started user by user in round robin (the user with the fewest running
jobs first, then queue order), so a new user's job starts at once while another user's extra jobs wait queued.
A job whose cancel was requested is always admitted: its runner only writes the terminal state.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Waiting items (one per call waiting for a permit) per user and per job, and the permits each holds.

    ``push`` queues an item, ``pop`` takes the next one by the policy of the module doc and counts it as a held
    permit of its user and job, ``release`` gives a permit back; ``grant`` counts a permit taken without waiting."""

    def __init__(self) -> None:
        self._waiting: dict[str, dict[str, deque[T]]] = {}
        self._user_tick: dict[str, int] = {}
        self._job_tick: dict[str, int] = {}
        self.user_held: defaultdict[str, int] = defaultdict(int)
        self.job_held: defaultdict[str, int] = defaultdict(int)
        self._tick = itertools.count()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def waiting(self, *, user: str | None = None, job: str | None = None) -> int:
        """Items waiting: all, of one user, or of one job."""
        users = [user] if user is not None else list(self._waiting)
        total = 0
        for u in users:
            for j, queue in self._waiting.get(u, {}).items():
                if job is None or j == job:
                    total += len(queue)
        return total

    def held(self, *, user: str | None = None, job: str | None = None) -> int:
        if job is not None:
            return self.job_held.get(job, 0)
        if user is not None:
            return self.user_held.get(user, 0)
        return sum(self.user_held.values())

    def push(self, user: str, job: str, item: T) -> None:
        jobs = self._waiting.get(user)
        if jobs is None:
            jobs = self._waiting[user] = {}
            self._user_tick.setdefault(user, next(self._tick))
        queue = jobs.get(job)
        if queue is None:
            queue = jobs[job] = deque()
            self._job_tick.setdefault(job, next(self._tick))
        queue.append(item)
        self._size += 1

    def remove(self, user: str, job: str, item: T) -> bool:
        """Forget a waiting item (its caller gave up); False when it was not waiting."""
        queue = self._waiting.get(user, {}).get(job)
        if queue is None:
            return False
        try:
            queue.remove(item)
        except ValueError:
            return False
        self._size -= 1
        self._drop_empty(user, job)
        return True

    def pop(self) -> tuple[str, str, T] | None:
        """The next waiting item by the policy (None when nothing waits), counted as granted."""
        if not self._waiting:
            return None
        user = min(self._waiting, key=lambda u: (self.user_held.get(u, 0), self._user_tick[u]))
        jobs = self._waiting[user]
        job = min(jobs, key=lambda j: (self.job_held.get(j, 0), self._job_tick[j]))
        item = jobs[job].popleft()
        self._size -= 1
        self._user_tick[user] = self._job_tick[job] = next(self._tick)  # served now: behind its equals
        self._drop_empty(user, job)
        self.grant(user, job)
        return user, job, item

    def grant(self, user: str, job: str) -> None:
        self.user_held[user] += 1
        self.job_held[job] += 1

    def release(self, user: str, job: str) -> None:
        for held, key in ((self.user_held, user), (self.job_held, job)):
            held[key] -= 1
            if held[key] <= 0:
                del held[key]
        self._forget_idle(user, job)

    def _drop_empty(self, user: str, job: str) -> None:
        jobs = self._waiting.get(user)
        if jobs is not None and not jobs.get(job, True):
            del jobs[job]
            if not jobs:
                del self._waiting[user]
        self._forget_idle(user, job)

    def _forget_idle(self, user: str, job: str) -> None:
        """A user or job that neither waits nor holds anything loses its place in the round robin (bounded
        memory; it comes back as a new arrival)."""
        if job not in self.job_held and job not in self._waiting.get(user, {}):
            self._job_tick.pop(job, None)
        if user not in self.user_held and user not in self._waiting:
            self._user_tick.pop(user, None)


@dataclass(frozen=True)
class Candidate:
    """A job that could be started here (its lease is free)."""

    job_id: str
    user_id: str
    cancel_requested: bool = False


def admit(user_id: str, running: Mapping[str, int], *, max_jobs: int, per_user: int) -> bool:
    """Whether one more job of ``user_id`` may start now (``running``: jobs running here per user)."""
    return sum(running.values()) < max_jobs and running.get(user_id, 0) < per_user


def pick_admissions(
    candidates: Sequence[Candidate], running: Mapping[str, int], *, max_jobs: int, per_user: int
) -> list[Candidate]:
    """The jobs to start, in order: cancel-requested ones first (always), then one job per user in turn — the user
    with the fewest running jobs first, ties in queue order — within ``max_jobs`` and ``per_user``."""
    counts = dict(running)
    free = max_jobs - sum(counts.values())
    chosen = [c for c in candidates if c.cancel_requested]
    queues: dict[str, deque[Candidate]] = {}
    for c in candidates:
        if not c.cancel_requested:
            queues.setdefault(c.user_id, deque()).append(c)
    order = list(queues)  # queue order of each user's first candidate breaks ties
    while free > 0:
        open_users = [u for u in order if queues[u] and counts.get(u, 0) < per_user]
        if not open_users:
            break
        user = min(open_users, key=lambda u: counts.get(u, 0))  # min keeps the first among equals
        chosen.append(queues[user].popleft())
        counts[user] = counts.get(user, 0) + 1
        free -= 1
    return chosen
