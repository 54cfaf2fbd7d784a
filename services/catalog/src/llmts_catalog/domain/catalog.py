"""Catalog rules: which models a query selects and in what order, and what changed between two syncs.

Pure functions over :class:`llmts_providers.models.ModelRecord` (a pydantic data model); no I/O here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from llmts_api.catalog import DEFAULT_LIMIT, MAX_LIMIT, ProviderStatus, SortKey, SortOrder
from llmts_api.catalog import ProviderName as ProviderName  # the contract's names are the domain's
from llmts_providers.models import ModelRecord


class ModelQuery(BaseModel):
    """Filters, sort and page of ``GET /providers/models``. Every filter left ``None`` selects everything."""

    model_config = ConfigDict(frozen=True)

    provider: ProviderName | None = None
    free: bool | None = None
    online: bool | None = None
    structured_output: bool | None = None
    tools: bool | None = None
    min_context: int | None = Field(default=None, ge=0)
    modality: str | None = Field(default=None, description="Matches an input or an output modality.")
    input_modality: str | None = None
    output_modality: str | None = None
    q: str | None = Field(
        default=None, description="Case-insensitive; every word must occur in id/name/description."
    )
    sort: SortKey = "name"
    order: SortOrder = "asc"
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0)


def _terms(q: str | None) -> list[str]:
    return [t for t in (q or "").casefold().split() if t]


def matches(record: ModelRecord, query: ModelQuery) -> bool:
    if query.provider is not None and record.provider != query.provider:
        return False
    if query.free is not None and record.free != query.free:
        return False
    if query.online is not None and record.online != query.online:
        return False
    if query.structured_output is not None and record.structured_output != query.structured_output:
        return False
    if query.tools is not None and record.tools != query.tools:
        return False
    if query.min_context is not None and (record.context_length or 0) < query.min_context:
        return False
    if query.modality is not None:
        wanted = query.modality.casefold()
        if wanted not in record.input_modalities and wanted not in record.output_modalities:
            return False
    if query.input_modality is not None and query.input_modality.casefold() not in record.input_modalities:
        return False
    if query.output_modality is not None and query.output_modality.casefold() not in record.output_modalities:
        return False
    terms = _terms(query.q)
    if terms:
        haystack = f"{record.id}\n{record.name}\n{record.description}".casefold()
        if not all(t in haystack for t in terms):
            return False
    return True


def blended_price(record: ModelRecord) -> Decimal | None:
    """Prompt + completion USD per 1M tokens; ``None`` when either is unknown (e.g. router models)."""
    p, c = record.pricing.prompt, record.pricing.completion
    if p is None or c is None:
        return None
    return p + c


def _primary(record: ModelRecord, key: SortKey) -> float | str | None:
    if key == "price":
        price = blended_price(record)
        return None if price is None else float(price)
    if key == "context":
        return record.context_length
    if key == "created":
        return None if record.created is None else record.created.timestamp()
    return record.name.casefold()


def sort_models(records: Iterable[ModelRecord], key: SortKey, order: SortOrder) -> list[ModelRecord]:
    """Stable order: the key (unknown values always last, in either direction), then name, provider, id."""
    items = list(records)
    # tie-breakers ascending first, then the primary key (Python's sort is stable)
    items.sort(key=lambda r: (r.name.casefold(), r.provider, r.id))
    known = [r for r in items if _primary(r, key) is not None]
    unknown = [r for r in items if _primary(r, key) is None]
    if key == "name":
        known.sort(key=lambda r: r.name.casefold(), reverse=order == "desc")
    else:
        known.sort(key=lambda r: float(_primary(r, key) or 0.0), reverse=order == "desc")
    return known + unknown


class ModelPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ModelRecord]


def query_models(records: Iterable[ModelRecord], query: ModelQuery) -> ModelPage:
    selected = [r for r in records if matches(r, query)]
    ordered = sort_models(selected, query.sort, query.order)
    page = ordered[query.offset : query.offset + query.limit]
    return ModelPage(total=len(ordered), limit=query.limit, offset=query.offset, items=page)


def find_model(
    records: Sequence[ModelRecord], model_id: str, provider: ProviderName | None = None
) -> ModelRecord | None:
    """Exact id first (OpenRouter before Ollama when both have it), then the Ollama spellings
    ``ollama/<name>`` and ``<name>`` for ``<name>:latest``."""
    candidates = [r for r in records if provider is None or r.provider == provider]
    exact = [r for r in candidates if r.id == model_id]
    if exact:
        exact.sort(key=lambda r: r.provider != "openrouter")
        return exact[0]
    name = model_id.removeprefix("ollama/")
    wanted = {name} if ":" in name else {name, f"{name}:latest"}
    for r in candidates:
        if r.provider == "ollama" and r.id in wanted:
            return r
    return None


# --- what changed between two syncs ----------------------------------------------------------------------
def fingerprint(record: ModelRecord) -> str:
    """A short hash of everything the catalog publishes about a model (raw provider fields included)."""
    payload = record.model_dump(mode="json")
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class CatalogDiff(BaseModel):
    model_config = ConfigDict(frozen=True)

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_catalog(previous: Mapping[str, str], current: Mapping[str, str]) -> CatalogDiff:
    """Compare ``{model id: fingerprint}`` maps of the last published and the freshly fetched catalog."""
    return CatalogDiff(
        added=sorted(k for k in current if k not in previous),
        removed=sorted(k for k in previous if k not in current),
        changed=sorted(k for k in current if k in previous and previous[k] != current[k]),
    )


def dedupe(records: Iterable[ModelRecord]) -> list[ModelRecord]:
    """One record per id (a provider listing the same id twice keeps the last)."""
    by_id: dict[str, ModelRecord] = {}
    for r in records:
        by_id[r.id] = r
    return list(by_id.values())


# --- provider state --------------------------------------------------------------------------------------


class ProviderState(BaseModel):
    """What the catalog knows about one provider's sync."""

    name: str
    enabled: bool = True
    configured: bool = False
    model_count: int = 0
    last_synced_at: datetime | None = Field(default=None, description="Last successful sync.")
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    revision: int = 0

    def failing(self) -> bool:
        """The most recent attempt failed."""
        if self.last_error_at is None:
            return False
        return self.last_synced_at is None or self.last_error_at >= self.last_synced_at

    def is_stale(self, now: datetime, stale_after_seconds: float) -> bool:
        """Serving a copy that is not the provider's current list: the last attempt failed, or it is too old."""
        if self.last_synced_at is None:
            return False
        if self.failing():
            return True
        return (now - self.last_synced_at).total_seconds() > stale_after_seconds

    def status(self, now: datetime, stale_after_seconds: float) -> ProviderStatus:
        if not self.enabled:
            return "disabled"
        if self.last_synced_at is None:
            return "unavailable" if self.last_error_at is not None else "pending"
        return "stale" if self.is_stale(now, stale_after_seconds) else "ok"
