"""The CLI's live view of a job: a Rich progress bar fed by ``Client.watch`` (items, cost, ETA), and Ctrl-C that
asks whether to cancel the job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from llmts_client.client import Client
from llmts_client.models import Event, Job


@dataclass
class JobView:
    """What the bar shows, updated from each event (snapshot, progress, item, terminal)."""

    requested: int | None = None
    succeeded: int = 0
    rejected: int = 0
    cost_usd: float = 0.0
    eta_seconds: float | None = None
    status: str = "queued"

    def apply(self, event: Event) -> None:
        data = event.data
        if event.type == "snapshot":
            self._from_status(data)
            return
        if event.type == "item_generated":
            self.succeeded += 1
            return
        if event.type == "item_rejected":
            self.rejected += 1
            return
        self._counts(data, data)
        if event.type == "started":
            self.status = "running"
        elif event.type == "completed":
            self.status = str(data.get("status") or "completed")
        elif event.type in ("failed", "cancelled"):
            self.status = event.type

    def _from_status(self, data: dict[str, Any]) -> None:
        self.status = str(data.get("status") or self.status)
        counts = data.get("counts")
        self._counts(data, counts if isinstance(counts, dict) else {})

    def _counts(self, data: dict[str, Any], counts: dict[str, Any]) -> None:
        """Counts from a status (``counts`` object) or an event (top-level fields), cost and ETA if given."""
        requested = data.get("requested") or counts.get("requested")
        self.requested = int(requested) if isinstance(requested, int | float) else self.requested
        self.succeeded = int(counts["succeeded"]) if _is_number(counts.get("succeeded")) else self.succeeded
        self.rejected = int(counts["rejected"]) if _is_number(counts.get("rejected")) else self.rejected
        usage = data.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("cost_usd"), int | float):
            self.cost_usd = float(usage["cost_usd"])
        progress = data.get("progress")
        eta = progress.get("eta_seconds") if isinstance(progress, dict) else data.get("eta_seconds")
        self.eta_seconds = float(eta) if isinstance(eta, int | float) else self.eta_seconds

    def eta_text(self) -> str:
        if self.eta_seconds is None:
            return "ETA –"
        minutes, seconds = divmod(round(self.eta_seconds), 60)
        return f"ETA {minutes}:{seconds:02d}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _update(progress: Progress, task: TaskID, view: JobView) -> None:
    progress.update(
        task,
        total=view.requested,
        completed=view.succeeded,
        status=view.status,
        cost=f"${view.cost_usd:.4f}",
        eta=view.eta_text(),
        rejected=view.rejected,
    )


def follow(api: Client, job_id: str, console: Console) -> Job:
    """Show the job's progress until it ends; Ctrl-C asks whether to cancel it (else keeps watching)."""
    view = JobView()
    columns = (
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("items · {task.fields[rejected]} rejected · {task.fields[cost]} · {task.fields[eta]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("job", total=None, status="queued", cost="$0", eta="ETA –", rejected=0)
        while True:
            try:
                for event in api.watch(job_id):
                    view.apply(event)
                    _update(progress, task, view)
                break
            except KeyboardInterrupt:
                progress.stop()
                if typer.confirm(f"Cancel job {job_id}?", default=False, err=True):
                    api.cancel(job_id)
                    console.print(f"cancelling {job_id} (finished items are kept)")
                progress.start()
    return api.job(job_id)
