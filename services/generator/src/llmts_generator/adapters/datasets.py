"""Rows of seed datasets, for the items of a job (issue 18 #1): read from the templates service, which owns the
datasets, through its internal route ``GET /internal/datasets/{id}/rows?user_id=…`` (``X-Internal-Token``; the job's
user must own the dataset), a page of ``page_rows`` rows at a time, and kept in a small LRU of pages (a job walks
its rows in order, or in a shuffled order whose nearby items are spread over the whole dataset — a thousand-row page
then serves many items of a large job in turn).

A dataset's rows never change (it is uploaded once, then only deleted), so cached pages stay right while it
exists; :meth:`DatasetRows.total` asks the service every time (a job's start checks the dataset still exists and
is the user's), and a dataset found gone drops its cached pages. Slots missing the same page wait for one read."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import httpx

from llmts_generator.domain.itemvars import DatasetGone, DatasetsUnavailable

__all__ = ["DatasetGone", "DatasetRows", "DatasetsUnavailable"]

PageKey = tuple[str, str, int]


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
        self._pages: OrderedDict[PageKey, list[dict[str, Any]]] = OrderedDict()
        self._reading: dict[PageKey, asyncio.Future[list[dict[str, Any]]]] = {}

    async def _get(self, user_id: str, dataset_id: str, offset: int, limit: int) -> dict[str, Any]:
        params: dict[str, str | int] = {"user_id": user_id, "offset": offset, "limit": limit}
        try:
            resp = await self._client.get(
                f"/internal/datasets/{dataset_id}/rows", params=params, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise DatasetsUnavailable(f"templates service: {type(exc).__name__}") from exc
        if resp.status_code == 404:
            self._forget(user_id, dataset_id)
            raise DatasetGone(f"seed dataset {dataset_id} not found (deleted, or not the job owner's)")
        if resp.status_code >= 500 or resp.status_code in (401, 403):  # 401/403: our token; an operator's fix
            raise DatasetsUnavailable(f"templates service answered {resp.status_code}")
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
        return body

    def _forget(self, user_id: str, dataset_id: str) -> None:
        for key in [k for k in self._pages if k[:2] == (user_id, dataset_id)]:
            del self._pages[key]

    async def _page(self, user_id: str, dataset_id: str, page: int) -> list[dict[str, Any]]:
        key = (user_id, dataset_id, page)
        rows = self._pages.get(key)
        if rows is not None:
            self._pages.move_to_end(key)
            return rows
        reading = self._reading.get(key)
        if reading is not None:  # another slot reads it: wait for that read, and read again if it failed
            await asyncio.wait([reading])
            if not reading.cancelled() and reading.exception() is None:
                return reading.result()
            return await self._page(user_id, dataset_id, page)
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._reading[key] = future
        try:
            body = await self._get(user_id, dataset_id, page * self._page_rows, self._page_rows)
            rows = list(body["rows"])
        except BaseException:
            future.cancel()  # the waiters read it themselves (and meet the same error, or not)
            raise
        finally:
            self._reading.pop(key, None)
        future.set_result(rows)
        self._pages[key] = rows
        while len(self._pages) > self._max_pages:
            self._pages.popitem(last=False)
        return rows

    async def total(self, user_id: str, dataset_id: str) -> int:
        """How many rows the dataset has, asked now (``DatasetGone`` when it was deleted or is another user's)."""
        body = await self._get(user_id, dataset_id, 0, 1)
        return int(body["total"])

    async def row(self, user_id: str, dataset_id: str, index: int) -> dict[str, Any]:
        page, position = divmod(index, self._page_rows)
        rows = await self._page(user_id, dataset_id, page)
        if position >= len(rows):
            raise DatasetGone(f"seed dataset {dataset_id} has no row {index} (it changed?)")
        return dict(rows[position])
