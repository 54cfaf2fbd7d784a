"""What the use cases need from the outside world (implemented in ``adapters``; faked in unit tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from llmts_templates.domain.document import TemplateRecord, TemplateVersion

Outbox = list[dict[str, Any]]


@dataclass(frozen=True)
class ListFilter:
    user_id: str
    category: str | None = None
    """Whole value, case-insensitive."""
    tags: tuple[str, ...] = ()
    """Every one must be among the template's tags (whole values, case-insensitive)."""
    q: str | None = None
    visibility: Literal["private", "public"] | None = None
    only_mine: bool = False
    limit: int = 20
    offset: int = 0


class TemplateRepository(Protocol):
    """``templates`` (the current version + pending events) and ``template_versions`` (immutable history).

    Every write that changes a template carries its events (``outbox``) in the same single-document write.
    """

    async def insert(self, record: TemplateRecord, *, outbox: Outbox) -> None: ...

    async def get(self, template_id: str) -> TemplateRecord | None:
        """The live template (``None`` when absent or deleted)."""

    async def replace(self, record: TemplateRecord, *, expected_version: int, outbox: Outbox) -> bool:
        """Store ``record`` if the stored version is still ``expected_version``; False on a lost race."""

    async def mark_deleted(
        self, template_id: str, *, expected_version: int, at: datetime, outbox: Outbox
    ) -> bool: ...

    async def search(self, flt: ListFilter) -> tuple[list[TemplateRecord], int]: ...

    async def facet(self, flt: ListFilter, field: Literal["category", "tags"]) -> dict[str, int]:
        """Templates per value of ``field`` (exact spelling) among those ``flt`` selects (its page ignored)."""
        ...

    async def put_version(self, version: TemplateVersion) -> None:
        """Idempotent: an existing (template_id, version) is never overwritten."""

    async def get_version(self, template_id: str, version: int) -> TemplateVersion | None: ...

    async def list_versions(
        self, template_id: str, *, limit: int, offset: int, public_only: bool = False
    ) -> tuple[list[TemplateVersion], int]:
        """Newest first; ``public_only``: only the versions that were public when current (``was_public``)."""
        ...


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens (``None`` = unknown) and per request."""

    model_id: str
    prompt_per_million: Decimal | None
    completion_per_million: Decimal | None
    request: Decimal | None = None
    max_completion_tokens: int | None = None


@dataclass(frozen=True)
class PriceLookup:
    price: ModelPrice | None
    notes: list[str] = field(default_factory=list)


class PriceSource(Protocol):
    async def price(self, model_id: str, *, authorization: str | None) -> PriceLookup:
        """Never raises: an unreachable catalog is a lookup with ``price=None`` and a note."""


class DatasetCatalog(Protocol):
    """The templates service's seed datasets (``adapters.datasets_mongo.MongoDatasetRepository``)."""

    async def get(self, dataset_id: str) -> dict[str, Any] | None:
        """The ready dataset (``owner_id``, ``columns`` …) or ``None``."""

    async def rows(self, dataset_id: str, offset: int, limit: int) -> list[dict[str, Any]]:
        """Rows ``offset`` .. ``offset + limit - 1`` in file order."""
