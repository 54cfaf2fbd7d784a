"""Rows of seed datasets, for the items of a job (issue 18 #1): read from the templates service, which owns the
datasets, through its internal route ``GET /internal/datasets/{id}/rows?user_id=…`` (``X-Internal-Token``; the job's
user must own the dataset), a page of ``page_rows`` rows at a time, and kept in a small LRU of pages (a job walks
its rows in order, or in a shuffled order whose nearby items are spread over the whole dataset — a thousand-row page
then serves many items of a large job in turn)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import httpx

from llmts_generator.domain.itemvars import DatasetGone, DatasetsUnavailable

__all__ = ["DatasetGone", "DatasetRows", "DatasetsUnavailable"]


class DatasetRows:
    def __init__(
        self,
        client: httpx.AsyncClient,
        internal_token: str | None,
        *,
        page_rows: int = 1000,
        max_pages: int = 64,
    ) -> None:
        self._client = client
        self._headers = {"X-Internal-Token": internal_token} if internal_token else {}
        self._page_rows = page_rows
        self._max_pages = max_pages
        self._pages: OrderedDict[tuple[str, str, int], list[dict[str, Any]]] = OrderedDict()
        self._totals: dict[tuple[str, str], int] = {}

    async def _page(self, user_id: str, dataset_id: str, page: int) -> list[dict[str, Any]]:
        key = (user_id, dataset_id, page)
        rows = self._pages.get(key)
        if rows is not None:
            self._pages.move_to_end(key)
            return rows
        params: dict[str, str | int] = {
            "user_id": user_id,
            "offset": page * self._page_rows,
            "limit": self._page_rows,
        }
        try:
            resp = await self._client.get(
                f"/internal/datasets/{dataset_id}/rows", params=params, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise DatasetsUnavailable(f"templates service: {type(exc).__name__}") from exc
        if resp.status_code == 404:
            raise DatasetGone(f"seed dataset {dataset_id} not found (deleted, or not the job owner's)")
        if resp.status_code >= 500 or resp.status_code in (401, 403):  # 401/403: our token; an operator's fix
            raise DatasetsUnavailable(f"templates service answered {resp.status_code}")
        resp.raise_for_status()
        body = resp.json()
        rows = list(body["rows"])
        self._totals[(user_id, dataset_id)] = int(body["total"])
        self._pages[key] = rows
        while len(self._pages) > self._max_pages:
            self._pages.popitem(last=False)
        return rows

    async def total(self, user_id: str, dataset_id: str) -> int:
        """How many rows the dataset has."""
        if (user_id, dataset_id) not in self._totals:
            await self._page(user_id, dataset_id, 0)
        return self._totals[(user_id, dataset_id)]

    async def row(self, user_id: str, dataset_id: str, index: int) -> dict[str, Any]:
        page, position = divmod(index, self._page_rows)
        rows = await self._page(user_id, dataset_id, page)
        if position >= len(rows):
            raise DatasetGone(f"seed dataset {dataset_id} has no row {index} (it changed?)")
        return dict(rows[position])
