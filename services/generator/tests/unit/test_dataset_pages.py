"""The seed-row reader's page cache (adapters/datasets.py): slots missing the same page wait for one read, and a
failed read leaves the waiters to read for themselves."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from llmts_generator.adapters.datasets import DatasetRows, DatasetsUnavailable


def reader(fail_first: int = 0) -> tuple[DatasetRows, list[str]]:
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url.params["offset"]))
        await asyncio.sleep(0.05)  # a read in flight while the other slots ask for the same page
        if len(calls) <= fail_first:
            return httpx.Response(503)
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        rows = [{"n": i} for i in range(offset, min(offset + limit, 25))]
        return httpx.Response(200, json={"rows": rows, "total": 25})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://templates")
    return DatasetRows(client, "t", page_rows=10), calls


async def test_concurrent_misses_of_one_page_make_one_read() -> None:
    rows, calls = reader()
    got = await asyncio.gather(*(rows.row("u", "d", i) for i in range(10)))
    assert got == [{"n": i} for i in range(10)]
    assert calls == ["0"]
    assert await rows.row("u", "d", 12) == {"n": 12}
    assert calls == ["0", "10"]


async def test_a_failed_shared_read_is_read_again_by_the_waiters() -> None:
    rows, calls = reader(fail_first=1)
    results = await asyncio.gather(*(rows.row("u", "d", i) for i in range(3)), return_exceptions=True)
    assert isinstance(results[0], DatasetsUnavailable)  # the slot that read it meets the error
    assert results[1:] == [
        {"n": 1},
        {"n": 2},
    ]  # the others read it again (once: the second waits for the first)
    assert len(calls) == 2
    with pytest.raises(DatasetsUnavailable):
        await reader(fail_first=5)[0].total("u", "d")
