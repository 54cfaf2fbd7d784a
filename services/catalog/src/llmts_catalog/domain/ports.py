"""The ports the handlers depend on; adapters implement them (Mongo in production, in-memory fakes in tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from llmts_catalog.domain.catalog import ProviderState
from llmts_common.contracts.events import ModelCatalogUpdated
from llmts_providers.models import ModelRecord


class CatalogStore(Protocol):
    """Where synced catalogs and provider states live (collections ``models`` and ``providers``)."""

    async def ensure_provider(self, name: str, *, configured: bool) -> None:
        """Create the provider's state document if missing (idempotent)."""

    async def published(self, name: str) -> tuple[int, dict[str, str]]:
        """``(revision, {model id: fingerprint})`` of the last successful sync (what events were based on)."""

    async def write_models(
        self,
        name: str,
        records: Sequence[ModelRecord],
        fingerprints: Mapping[str, str],
        *,
        synced_at: datetime,
    ) -> int:
        """Make the stored models of ``name`` equal ``records``, writing only what differs; returns writes done."""

    async def record_success(
        self,
        name: str,
        *,
        expected_revision: int,
        fingerprints: Mapping[str, str],
        synced_at: datetime,
        configured: bool,
        event: ModelCatalogUpdated | None,
    ) -> bool:
        """Store the new published state (and the event, atomically with it) if nobody else did since
        ``expected_revision``; returns False on such a conflict (the event is then not recorded)."""

    async def record_failure(self, name: str, *, error: str, at: datetime, configured: bool) -> None:
        """Remember a failed attempt; the stored models stay as they are (the last good copy)."""

    async def provider_states(self) -> list[ProviderState]: ...

    async def all_models(self) -> list[ModelRecord]: ...


@dataclass(frozen=True)
class CatalogSnapshot:
    records: Sequence[ModelRecord]
    states: Mapping[str, ProviderState]
    loaded_at: datetime | None = None
    revisions: tuple[tuple[str, int], ...] = field(default=())


class CatalogSource(Protocol):
    """The whole catalog for reads (a cache over the store)."""

    async def snapshot(self) -> CatalogSnapshot: ...
