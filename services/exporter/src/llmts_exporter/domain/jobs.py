"""Projection rules: how each generation event changes the exporter's view of a job (pure, no I/O).

Each rule returns the fields to set; the repository applies them idempotently. A terminal event always wins over
a late or redelivered non-terminal one (``GenerationStarted`` never reopens a finished job).
"""

from __future__ import annotations

from typing import Any

from llmts_common.contracts import (
    GenerationCancelled,
    GenerationCompleted,
    GenerationFailed,
    GenerationStarted,
    ItemGenerated,
)

TerminalEvent = GenerationCompleted | GenerationFailed | GenerationCancelled


def started_fields(event: GenerationStarted) -> dict[str, Any]:
    """Descriptive fields of the job; they never touch ``status``/``terminal``."""
    return {
        "user_id": event.user_id,
        "requested": event.requested,
        "model": event.model.id,
        "template_id": event.template_id,
        "template_version": event.template_version,
        "template_name": event.template_name,
        "output_format": event.output_format,
        # the layout follows the schema only when items were validated against it (older producers sent it only then)
        "item_schema": event.item_schema if event.item_schema_enforced is not False else None,
        "started_at": event.started_at,
    }


def terminal_fields(event: TerminalEvent) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "user_id": event.user_id,
        "terminal": True,
        "succeeded": event.succeeded,
        "rejected": event.rejected,
        "prompt_tokens": event.usage.prompt_tokens,
        "completion_tokens": event.usage.completion_tokens,
        "cost_usd": event.usage.cost_usd,
    }
    if isinstance(event, GenerationCompleted):
        fields.update(status=event.status, requested=event.requested, stop_reason=event.stop_reason)
        if event.diversity is not None:  # issue 18: the appendix of the `diversity` export option
            fields["diversity"] = event.diversity
    elif isinstance(event, GenerationFailed):
        fields.update(status="failed", stop_reason=f"{event.code}: {event.reason}")
    else:
        fields.update(status="cancelled", stop_reason="cancelled")
    return fields


def item_provenance(event: ItemGenerated) -> dict[str, Any]:
    """How an item was made, as the exporter keeps it beside the item (shown by the ``provenance`` export
    option; the field names are the writers' ``_provenance.FIELDS``; ``index`` is the item's own). Unknown
    values are left out (events of older generators carry neither ``model`` nor ``inputs``, nor ``provenance``)."""
    inputs = event.inputs or {}
    made = event.provenance or {}  # issue 18: seed row, sampled values, judge scores
    found: dict[str, Any] = {
        "model": event.model.id if event.model is not None else None,
        "provider": event.model.provider if event.model is not None else None,
        "target": inputs.get("target"),
        "task": inputs.get("task"),
        "task_index": inputs.get("task_index"),
        "attempts": event.attempts,
        "prompt_tokens": event.usage.prompt_tokens,
        "completion_tokens": event.usage.completion_tokens,
        "cost_usd": event.usage.cost_usd,
        "row": inputs.get("row") or None,
        "dataset_id": made.get("dataset_id"),
        "seed_row": made.get("seed_row"),
        "sampled": made.get("sampled") or None,
        "judge": made.get("judge") or None,
    }
    return {k: v for k, v in found.items() if v is not None}


def model_key(provenance: dict[str, Any]) -> str | None:
    """The model an item came from, as one string (``provider/id``; ``id`` alone for the default provider);
    ``None`` when unknown. The exporter counts distinct keys to tell a job that changed models."""
    model = provenance.get("model")
    if model is None:
        return None
    provider = provenance.get("provider")
    return f"{provider}/{model}" if provider else str(model)
