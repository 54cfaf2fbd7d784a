"""The catalog diff behind ModelCatalogUpdated, and the sync use case over in-memory adapters (no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llmts_catalog import handlers
from llmts_catalog.adapters.cache import CachedCatalog
from llmts_catalog.domain.catalog import (
    ModelQuery,
    ProviderState,
    dedupe,
    diff_catalog,
    fingerprint,
)
from llmts_common.errors import NotFound
from llmts_providers import ProviderUnavailable
from llmts_providers.models import ChatRequest, ChatResult, ConnectionTestResult, ModelRecord

from .fakes import InMemoryCatalogStore

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parents[4] / "tests" / "fakes" / "data"


def _raw() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((DATA / "openrouter_models.json").read_text())["data"]
    return data


class StubProvider:
    """A provider whose model list the test sets (or makes fail)."""

    name = "openrouter"

    def __init__(self, raw: list[dict[str, Any]]) -> None:
        self.raw = raw
        self.fail: Exception | None = None

    async def list_models(self) -> list[ModelRecord]:
        if self.fail is not None:
            raise self.fail
        return [ModelRecord.from_openrouter(m) for m in self.raw]

    async def get_model(self, model_id: str) -> ModelRecord:
        raise NotImplementedError

    async def chat(self, request: ChatRequest) -> ChatResult:
        raise NotImplementedError

    def build_request_body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def test_connection(self) -> ConnectionTestResult:
        if self.fail is not None:
            raise self.fail
        return ConnectionTestResult(provider=self.name, reachable=True, latency_ms=1.0, key_valid=True)

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 60) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def provider() -> StubProvider:
    return StubProvider(_raw())


@pytest.fixture
def store() -> InMemoryCatalogStore:
    return InMemoryCatalogStore()


def test_diff_reports_added_removed_changed() -> None:
    diff = diff_catalog({"a": "1", "b": "2", "c": "3"}, {"b": "2", "c": "33", "d": "4"})
    assert diff.added == ["d"]
    assert diff.removed == ["a"]
    assert diff.changed == ["c"]
    assert not diff.empty
    assert diff_catalog({"a": "1"}, {"a": "1"}).empty
    assert diff_catalog({}, {"x": "1"}).added == ["x"]


def test_fingerprint_follows_price_and_ignores_nothing_else() -> None:
    raw = _raw()[5]
    a = ModelRecord.from_openrouter(raw)
    assert fingerprint(a) == fingerprint(ModelRecord.from_openrouter(json.loads(json.dumps(raw))))
    cheaper = {**raw, "pricing": {**raw["pricing"], "prompt": "0.00000001"}}
    assert fingerprint(a) != fingerprint(ModelRecord.from_openrouter(cheaper))
    renamed = {**raw, "description": raw.get("description", "") + " (updated)"}
    assert fingerprint(a) != fingerprint(ModelRecord.from_openrouter(renamed))


def test_dedupe_keeps_one_record_per_id() -> None:
    raw = _raw()[:3]
    got = dedupe([ModelRecord.from_openrouter(m) for m in [*raw, raw[0]]])
    assert [r.id for r in got] == [m["id"] for m in raw]


async def test_first_sync_adds_everything_and_records_one_event(
    provider: StubProvider, store: InMemoryCatalogStore
) -> None:
    clock = Clock()
    out = await handlers.sync_provider("openrouter", provider=provider, store=store, clock=clock)
    assert out.ok
    assert out.total == len(provider.raw) == out.added
    assert out.event_recorded
    assert len(store.models) == out.total
    (event,) = store.events
    assert event.provider == "openrouter"
    assert event.total == out.total
    assert event.synced_at == clock.now
    assert sorted(event.added) == sorted(m["id"] for m in provider.raw)
    assert event.removed == event.changed == []


async def test_unchanged_resync_writes_nothing_and_publishes_nothing(
    provider: StubProvider, store: InMemoryCatalogStore
) -> None:
    await handlers.sync_provider("openrouter", provider=provider, store=store)
    out = await handlers.sync_provider("openrouter", provider=provider, store=store)
    assert out.ok
    assert out.writes == 0
    assert not out.event_recorded
    assert len(store.events) == 1
    assert store.states["openrouter"].revision == 2


async def test_changes_are_published_as_added_removed_changed(
    provider: StubProvider, store: InMemoryCatalogStore
) -> None:
    await handlers.sync_provider("openrouter", provider=provider, store=store)
    raw = provider.raw
    removed_id = raw[0]["id"]
    changed = {**raw[1], "pricing": {**raw[1]["pricing"], "completion": "0.00009"}}
    added = {**raw[2], "id": "acme/brand-new-model:free", "name": "Acme: Brand New (free)"}
    provider.raw = [changed, *raw[2:], added]
    out = await handlers.sync_provider("openrouter", provider=provider, store=store)
    assert (out.added, out.removed, out.changed) == (1, 1, 1)
    event = store.events[-1]
    assert event.added == ["acme/brand-new-model:free"]
    assert event.removed == [removed_id]
    assert event.changed == [raw[1]["id"]]
    assert event.total == len(raw)
    assert f"openrouter:{removed_id}" not in store.models
    assert out.writes == 3


async def test_a_failing_provider_keeps_its_last_good_copy_marked_stale(
    provider: StubProvider, store: InMemoryCatalogStore
) -> None:
    clock = Clock()
    await handlers.sync_provider("openrouter", provider=provider, store=store, clock=clock)
    good_at = clock.now
    clock.tick()
    provider.fail = ProviderUnavailable("503 Service temporarily unavailable", "openrouter", status_code=503)
    out = await handlers.sync_provider("openrouter", provider=provider, store=store, clock=clock)
    assert not out.ok
    assert "ProviderUnavailable" in (out.error or "")
    assert len(store.models) == len(provider.raw)
    state = store.states["openrouter"]
    assert state.last_synced_at == good_at
    assert state.last_error_at == clock.now
    assert state.is_stale(clock.now, 3600)
    assert state.status(clock.now, 3600) == "stale"
    assert len(store.events) == 1
    # recovery clears the stale mark
    provider.fail = None
    clock.tick()
    await handlers.sync_provider("openrouter", provider=provider, store=store, clock=clock)
    assert store.states["openrouter"].status(clock.now, 3600) == "ok"


async def test_garbage_from_the_provider_is_a_failed_sync_not_a_crash(store: InMemoryCatalogStore) -> None:
    provider = StubProvider([{"id": "x/y", "pricing": "not a mapping"}])
    out = await handlers.sync_provider("openrouter", provider=provider, store=store)
    assert not out.ok
    assert store.states["openrouter"].status(datetime.now(UTC), 60) == "unavailable"


async def test_a_concurrent_sync_that_won_suppresses_the_duplicate_event(
    provider: StubProvider, store: InMemoryCatalogStore
) -> None:
    original = store.published

    async def stale_read(name: str) -> tuple[int, dict[str, str]]:
        revision, fps = await original(name)
        return revision - 1, fps  # as if another replica recorded a sync after we read

    await handlers.sync_provider("openrouter", provider=provider, store=store)
    provider.raw = provider.raw[1:]
    store.published = stale_read  # type: ignore[method-assign]
    out = await handlers.sync_provider("openrouter", provider=provider, store=store)
    assert out.ok
    assert not out.event_recorded
    assert len(store.events) == 1


def test_provider_state_status_rules() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert ProviderState(name="x").status(now, 60) == "pending"
    assert ProviderState(name="x", enabled=False).status(now, 60) == "disabled"
    assert ProviderState(name="x", last_error_at=now).status(now, 60) == "unavailable"
    fresh = ProviderState(name="x", last_synced_at=now - timedelta(seconds=10))
    assert fresh.status(now, 60) == "ok"
    assert not fresh.is_stale(now, 60)
    old = ProviderState(name="x", last_synced_at=now - timedelta(seconds=120))
    assert old.status(now, 60) == "stale"
    recovered = ProviderState(name="x", last_synced_at=now, last_error_at=now - timedelta(seconds=5))
    assert recovered.status(now, 60) == "ok"
    assert not recovered.failing()


async def test_cached_catalog_reloads_only_when_a_revision_moves(
    provider: StubProvider, store: InMemoryCatalogStore
) -> None:
    loads = 0
    original = store.all_models

    async def counting() -> list[ModelRecord]:
        nonlocal loads
        loads += 1
        return await original()

    store.all_models = counting  # type: ignore[method-assign]
    defaults = {
        "openrouter": ProviderState(name="openrouter", configured=True),
        "ollama": ProviderState(name="ollama", configured=True, enabled=False),
    }
    cache = CachedCatalog(store, defaults)
    await handlers.sync_provider("openrouter", provider=provider, store=store)
    page, snap = await handlers.list_models(ModelQuery(free=True), catalog=cache)
    assert page.total > 0
    assert loads == 1
    assert set(snap.states) == {"openrouter", "ollama"}
    assert not snap.states["ollama"].enabled
    await handlers.list_models(ModelQuery(), catalog=cache)
    assert loads == 1
    provider.raw = provider.raw[:10]
    await handlers.sync_provider("openrouter", provider=provider, store=store)
    page, _ = await handlers.list_models(ModelQuery(), catalog=cache)
    assert loads == 2
    assert page.total == 10
    record, _ = await handlers.get_model(provider.raw[3]["id"], catalog=cache)
    assert record.id == provider.raw[3]["id"]
    with pytest.raises(NotFound):
        await handlers.get_model("nobody/nothing", catalog=cache)


async def test_test_provider_never_raises(provider: StubProvider) -> None:
    ok = await handlers.test_provider("openrouter", provider=provider)
    assert ok.reachable
    assert ok.key_valid
    provider.fail = RuntimeError("boom")
    bad = await handlers.test_provider("openrouter", provider=provider)
    assert not bad.reachable
    assert "boom" in (bad.error or "")
