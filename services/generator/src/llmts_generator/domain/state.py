"""The job state machine: queued → running → completed | completed_with_errors | stopped | failed | cancelled
(the table of what each means is in the service README). A finished job goes back to queued only through a new
*round* (:func:`can_reopen`: extend, resume, retry-rejected), never through :func:`transition`."""

from __future__ import annotations

from typing import Final, Literal

Status = Literal["queued", "running", "completed", "completed_with_errors", "stopped", "failed", "cancelled"]

QUEUED: Final = "queued"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
COMPLETED_WITH_ERRORS: Final = "completed_with_errors"
STOPPED: Final = "stopped"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"

# the cancel_reason of a job cancelled because its owner's account is erased: its runner abandons the calls at the
# provider at once instead of awaiting them (nothing of the user may be written after the erase)
CANCEL_ACCOUNT_DELETED: Final = "account deleted"

TERMINAL: Final[frozenset[str]] = frozenset({COMPLETED, COMPLETED_WITH_ERRORS, STOPPED, FAILED, CANCELLED})
ACTIVE: Final[frozenset[str]] = frozenset({QUEUED, RUNNING})

_ALLOWED: Final[dict[str, frozenset[str]]] = {
    QUEUED: frozenset({RUNNING, FAILED, CANCELLED}),
    RUNNING: frozenset({COMPLETED, COMPLETED_WITH_ERRORS, STOPPED, FAILED, CANCELLED}),
}


# which finished jobs each kind of round may reopen (missing / rejected items are checked by domain/rounds)
REOPENABLE: Final[dict[str, frozenset[str]]] = {
    "extend": TERMINAL,
    "resume": frozenset({COMPLETED_WITH_ERRORS, STOPPED, FAILED, CANCELLED}),
    "retry_rejected": frozenset({COMPLETED_WITH_ERRORS, STOPPED, FAILED, CANCELLED}),
}


class IllegalTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"illegal job transition {current} → {target}")
        self.current = current
        self.target = target


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def can_transition(current: str, target: str) -> bool:
    return target in _ALLOWED.get(current, frozenset())


def can_reopen(kind: str, current: str) -> bool:
    """A finished job may start a new round of ``kind`` (→ queued, then running again)."""
    return current in REOPENABLE.get(kind, frozenset())


def transition(current: str, target: str) -> str:
    """Return ``target`` when the move is legal, else raise :class:`IllegalTransition`."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return target


def sources_of(target: str) -> list[str]:
    """Statuses from which ``target`` is reachable (used as the filter of a conditional update)."""
    return sorted(s for s, targets in _ALLOWED.items() if target in targets)
