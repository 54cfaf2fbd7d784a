"""Fakes for the unit tier: an in-memory repository that implements the port, and a fixed price source."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from llmts_common.contracts import Message
from llmts_templates.domain.document import TemplateRecord, TemplateVersion
from llmts_templates.domain.examples import load_examples
from llmts_templates.domain.ports import ListFilter, ModelPrice, Outbox, PriceLookup
from llmts_templates.handlers import Deps


class FakeTemplateRepository:
    def __init__(self) -> None:
        self.templates: dict[str, dict[str, Any]] = {}
        self.versions: dict[tuple[str, int], TemplateVersion] = {}

    async def insert(self, record: TemplateRecord, *, outbox: Outbox) -> None:
        assert record.id not in self.templates
        self.templates[record.id] = {"record": record, "deleted": False, "outbox": list(outbox)}

    async def get(self, template_id: str) -> TemplateRecord | None:
        row = self.templates.get(template_id)
        return None if row is None or row["deleted"] else row["record"]

    async def replace(self, record: TemplateRecord, *, expected_version: int, outbox: Outbox) -> bool:
        row = self.templates.get(record.id)
        if row is None or row["deleted"] or row["record"].version != expected_version:
            return False
        row["record"] = record
        row["outbox"].extend(outbox)
        return True

    async def mark_deleted(
        self, template_id: str, *, expected_version: int, at: datetime, outbox: Outbox
    ) -> bool:
        row = self.templates.get(template_id)
        if row is None or row["deleted"] or row["record"].version != expected_version:
            return False
        row["deleted"] = True
        row["outbox"].extend(outbox)
        return True

    async def search(self, flt: ListFilter) -> tuple[list[TemplateRecord], int]:
        out = self._matching(flt)
        out.sort(key=lambda r: (r.updated_at, r.id), reverse=True)
        return out[flt.offset : flt.offset + flt.limit], len(out)

    async def facet(self, flt: ListFilter, field: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self._matching(flt):
            values = r.document.tags if field == "tags" else [r.document.category]
            for value in dict.fromkeys(values):
                if value:
                    counts[value] = counts.get(value, 0) + 1
        return counts

    def _matching(self, flt: ListFilter) -> list[TemplateRecord]:
        out = []
        for row in self.templates.values():
            r: TemplateRecord = row["record"]
            d = r.document
            if row["deleted"] or not (
                r.owner_id == flt.user_id or (d.visibility == "public" and not flt.only_mine)
            ):
                continue
            if flt.only_mine and r.owner_id != flt.user_id:
                continue
            if flt.visibility and d.visibility != flt.visibility:
                continue
            if flt.category and (d.category or "").casefold() != flt.category.casefold():
                continue
            if not {t.casefold() for t in flt.tags} <= {t.casefold() for t in d.tags}:
                continue
            if flt.q and flt.q.lower() not in (d.name + " " + d.description).lower():
                continue
            out.append(r)
        return out

    async def put_version(self, version: TemplateVersion) -> None:
        self.versions.setdefault((version.template_id, version.version), version)

    async def get_version(self, template_id: str, version: int) -> TemplateVersion | None:
        return self.versions.get((template_id, version))

    async def list_versions(
        self, template_id: str, *, limit: int, offset: int, public_only: bool = False
    ) -> tuple[list[TemplateVersion], int]:
        vs = sorted(
            (
                v
                for (t, _), v in self.versions.items()
                if t == template_id and (v.was_public or not public_only)
            ),
            key=lambda v: -v.version,
        )
        return vs[offset : offset + limit], len(vs)

    def events(self, template_id: str) -> list[str]:
        return [e["envelope"]["type"] for e in self.templates[template_id]["outbox"]]


def _event(message: Message) -> dict[str, Any]:
    envelope = message.to_envelope(source="templates")
    return {"id": envelope.id, "topic": message.TOPIC, "envelope": envelope.model_dump(mode="json")}


@pytest.fixture
def repo() -> FakeTemplateRepository:
    return FakeTemplateRepository()


@pytest.fixture
def deps(repo: FakeTemplateRepository) -> Deps:
    woken: list[int] = []
    d = Deps(repo=repo, event=_event, notify=lambda: woken.append(1), examples=load_examples())
    d.woken = woken  # type: ignore[attr-defined]
    return d


class FixedPrices:
    def __init__(self, price: ModelPrice | None, notes: list[str] | None = None) -> None:
        self._lookup = PriceLookup(price=price, notes=notes or [])
        self.calls: list[tuple[str, str | None]] = []

    async def price(self, model_id: str, *, authorization: str | None) -> PriceLookup:
        self.calls.append((model_id, authorization))
        return self._lookup


@pytest.fixture
def prices() -> FixedPrices:
    return FixedPrices(
        ModelPrice(
            model_id="openai/gpt-4o-mini",
            prompt_per_million=Decimal("0.15"),
            completion_per_million=Decimal("0.60"),
        )
    )
