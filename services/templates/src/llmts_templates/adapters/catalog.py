"""Model prices from the catalog service (``GET {CATALOG_URL}/providers/models/{id}``).

The catalog answers the normalised record: ``pricing.prompt`` / ``pricing.completion`` in USD per 1M tokens
(decimals, possibly as strings), ``pricing.request`` per request, ``structured_output``. Any failure (down,
timeout, 404, unexpected body) is a lookup without a price and a note: a preview never fails because of it.
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from llmts_templates.domain.ports import ModelPrice, PriceLookup

_CACHE_TTL_S = 60.0


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() and d >= 0 else None  # negative = OpenRouter's "variable price" sentinel


def price_from_record(model_id: str, record: Any) -> ModelPrice | None:
    if not isinstance(record, dict) or not isinstance(record.get("pricing"), dict):
        return None
    pricing = record["pricing"]
    mct = record.get("max_completion_tokens")
    return ModelPrice(
        model_id=str(record.get("id") or model_id),
        prompt_per_million=_dec(pricing.get("prompt")),
        completion_per_million=_dec(pricing.get("completion")),
        request=_dec(pricing.get("request")),
        max_completion_tokens=mct if isinstance(mct, int) and mct > 0 else None,
    )


class CatalogPriceClient:
    def __init__(self, base_url: str, *, timeout: float = 3.0, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)
        self._cache: dict[str, tuple[float, ModelPrice]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def price(self, model_id: str, *, authorization: str | None) -> PriceLookup:
        cached = self._cache.get(model_id)
        if cached and time.monotonic() - cached[0] < _CACHE_TTL_S:
            return PriceLookup(price=cached[1])
        headers = {"authorization": authorization} if authorization else {}
        try:
            resp = await self._http.get(f"/providers/models/{quote(model_id, safe='/:')}", headers=headers)
        except httpx.HTTPError as exc:
            return PriceLookup(
                price=None, notes=[f"catalog unavailable ({type(exc).__name__}); no cost estimate"]
            )
        if resp.status_code == 404:
            return PriceLookup(
                price=None, notes=[f"model {model_id!r} is not in the catalog; no cost estimate"]
            )
        if resp.status_code != 200:
            return PriceLookup(price=None, notes=[f"catalog answered {resp.status_code}; no cost estimate"])
        try:
            price = price_from_record(model_id, resp.json())
        except ValueError:
            price = None
        if price is None:
            return PriceLookup(price=None, notes=["catalog record has no pricing; no cost estimate"])
        self._cache[model_id] = (time.monotonic(), price)
        return PriceLookup(price=price)
