"""The read side: the whole catalog held in memory, reloaded from the store when a provider's revision moves.

Every read costs one small query (the provider documents, for their revisions and sync state); the models are
reloaded only after a sync wrote a new revision, by whichever replica did it. See the README for the measurement
behind filtering in memory rather than in Mongo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from llmts_catalog.domain.catalog import ProviderState
from llmts_catalog.domain.ports import CatalogSnapshot, CatalogStore
from llmts_providers.models import ModelRecord


class CachedCatalog:
    def __init__(self, store: CatalogStore, defaults: Mapping[str, ProviderState]) -> None:
        """``defaults``: every known provider with ``enabled``/``configured`` from the current settings."""
        self._store = store
        self._defaults = dict(defaults)
        self._records: list[ModelRecord] | None = None
        self._revisions: tuple[tuple[str, int], ...] = ()
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._records = None

    async def snapshot(self) -> CatalogSnapshot:
        stored = {s.name: s for s in await self._store.provider_states()}
        states: dict[str, ProviderState] = {}
        for name, default in self._defaults.items():
            state = stored.get(name)
            states[name] = (
                default
                if state is None
                else state.model_copy(update={"enabled": default.enabled, "configured": default.configured})
            )
        revisions = tuple(sorted((n, s.revision) for n, s in stored.items()))
        records = self._records
        if records is None or revisions != self._revisions:
            async with self._lock:
                if self._records is None or revisions != self._revisions:
                    self._records = await self._store.all_models()
                    self._revisions = revisions
                records = self._records
        enabled = {n for n, s in states.items() if s.enabled}
        visible = [r for r in records if r.provider in enabled]
        return CatalogSnapshot(records=visible, states=states, revisions=revisions)
