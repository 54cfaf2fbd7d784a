"""Use cases of the catalog service, as plain async functions: the input first, then keyword dependencies."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from llmts_catalog.domain.catalog import (
    ModelPage,
    ModelQuery,
    ProviderName,
    ProviderState,
    dedupe,
    diff_catalog,
    find_model,
    fingerprint,
    query_models,
)
from llmts_catalog.domain.ports import CatalogSnapshot, CatalogSource, CatalogStore
from llmts_common.contracts.events import ModelCatalogUpdated
from llmts_common.errors import NotFound
from llmts_providers.base import Provider
from llmts_providers.models import ConnectionTestResult, ModelRecord

log = logging.getLogger("llmts.catalog")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SyncOutcome:
    provider: str
    ok: bool
    total: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    writes: int = 0
    event_recorded: bool = False
    error: str | None = None


async def sync_provider(
    name: str,
    *,
    provider: Provider,
    store: CatalogStore,
    configured: bool = True,
    clock: Clock = utcnow,
) -> SyncOutcome:
    """Fetch ``name``'s model list and make the stored catalog equal it.

    A provider that fails keeps its last good copy (only the failure is recorded, so reads report it stale).
    When anything was added, removed or changed since the last successful sync, a ``ModelCatalogUpdated`` is
    stored in the provider document in the same write as the new published state, so it cannot be lost.
    """
    at = clock()
    await store.ensure_provider(name, configured=configured)
    try:
        records = dedupe(await provider.list_models())
    except Exception as exc:  # any failure of the provider or of its data: keep the last good copy
        error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("catalog sync of %s failed, serving the last good copy: %s", name, error)
        await store.record_failure(name, error=error, at=at, configured=configured)
        return SyncOutcome(provider=name, ok=False, error=error)
    fingerprints = {r.id: fingerprint(r) for r in records}
    revision, previous = await store.published(name)
    diff = diff_catalog(previous, fingerprints)
    writes = await store.write_models(name, records, fingerprints, synced_at=at)
    event = (
        None
        if diff.empty
        else ModelCatalogUpdated(
            provider=name,
            added=diff.added,
            removed=diff.removed,
            changed=diff.changed,
            total=len(records),
            synced_at=at,
        )
    )
    recorded = await store.record_success(
        name,
        expected_revision=revision,
        fingerprints=fingerprints,
        synced_at=at,
        configured=configured,
        event=event,
    )
    if not recorded:
        log.info("catalog sync of %s raced with another replica; its result stands", name)
    return SyncOutcome(
        provider=name,
        ok=True,
        total=len(records),
        added=len(diff.added),
        removed=len(diff.removed),
        changed=len(diff.changed),
        writes=writes,
        event_recorded=recorded and event is not None,
    )


async def list_models(query: ModelQuery, *, catalog: CatalogSource) -> tuple[ModelPage, CatalogSnapshot]:
    snapshot = await catalog.snapshot()
    return query_models(snapshot.records, query), snapshot


async def get_model(
    model_id: str, *, catalog: CatalogSource, provider: ProviderName | None = None
) -> tuple[ModelRecord, CatalogSnapshot]:
    snapshot = await catalog.snapshot()
    record = find_model(snapshot.records, model_id, provider)
    if record is None:
        raise NotFound(
            f"model {model_id!r} is not in the catalog",
            code="model_not_found",
            details={"model_id": model_id},
        )
    return record, snapshot


async def provider_states(*, catalog: CatalogSource) -> list[ProviderState]:
    snapshot = await catalog.snapshot()
    return list(snapshot.states.values())


async def test_provider(name: str, *, provider: Provider) -> ConnectionTestResult:
    """Reachability, latency, key validity, credits (OpenRouter) or version (Ollama), as data: never raises."""
    try:
        return await provider.test_connection()
    except Exception as exc:
        log.warning("connection test of %s failed unexpectedly: %s", name, exc)
        return ConnectionTestResult(provider=name, reachable=False, error=f"{type(exc).__name__}: {exc}")
