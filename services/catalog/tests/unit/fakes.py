"""In-memory implementation of the catalog store port, for the unit tests of the sync use case."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from llmts_catalog.domain.catalog import ProviderState
from llmts_common.contracts.events import ModelCatalogUpdated
from llmts_providers.models import ModelRecord


class InMemoryCatalogStore:
    def __init__(self) -> None:
        self.models: dict[str, tuple[ModelRecord, str]] = {}
        self.states: dict[str, ProviderState] = {}
        self.fingerprints: dict[str, dict[str, str]] = {}
        self.events: list[ModelCatalogUpdated] = []

    async def ensure_provider(self, name: str, *, configured: bool) -> None:
        self.states.setdefault(name, ProviderState(name=name, configured=configured))
        self.fingerprints.setdefault(name, {})

    async def published(self, name: str) -> tuple[int, dict[str, str]]:
        state = self.states.get(name)
        return (state.revision if state else 0), dict(self.fingerprints.get(name, {}))

    async def write_models(
        self,
        name: str,
        records: Sequence[ModelRecord],
        fingerprints: Mapping[str, str],
        *,
        synced_at: datetime,
    ) -> int:
        writes = 0
        keep = {r.key for r in records}
        for key in [k for k, (r, _) in self.models.items() if r.provider == name and k not in keep]:
            del self.models[key]
            writes += 1
        for r in records:
            fp = fingerprints[r.id]
            if self.models.get(r.key, (None, None))[1] != fp:
                self.models[r.key] = (r, fp)
                writes += 1
        return writes

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
        state = self.states.get(name) or ProviderState(name=name)
        if state.revision != expected_revision:
            return False
        self.states[name] = state.model_copy(
            update={
                "configured": configured,
                "model_count": len(fingerprints),
                "last_synced_at": synced_at,
                "last_attempt_at": synced_at,
                "revision": state.revision + 1,
            }
        )
        self.fingerprints[name] = dict(fingerprints)
        if event is not None:
            self.events.append(event)
        return True

    async def record_failure(self, name: str, *, error: str, at: datetime, configured: bool) -> None:
        state = self.states.get(name) or ProviderState(name=name)
        self.states[name] = state.model_copy(
            update={"configured": configured, "last_attempt_at": at, "last_error": error, "last_error_at": at}
        )

    async def provider_states(self) -> list[ProviderState]:
        return list(self.states.values())

    async def all_models(self) -> list[ModelRecord]:
        return [r for r, _ in self.models.values()]
