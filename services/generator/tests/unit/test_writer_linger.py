"""The writer of a long job gathers its batches (issue 14, fairness): fewer database round trips per item, so another
user's small job does not queue behind them; a small job, a job-level event and a closing writer never wait."""

from __future__ import annotations

import asyncio
import time

import pytest
from services.generator.tests.fakes import FakeGenerationRepository

from llmts_common.envelope import Envelope
from llmts_generator.folding import Batch, Op
from llmts_generator.writer import LINGER_FULL_OPS, JobWriter

pytestmark = pytest.mark.unit

LINGER_S = 0.3


def writer_for(repo: FakeGenerationRepository, *, after_items: int) -> tuple[JobWriter, list[Batch]]:
    repo.jobs["j1"] = {"_id": "j1", "lease_owner": "o", "run": 1, "status": "running"}
    written: list[Batch] = []
    writer = JobWriter(
        repo, "j1", "o", 1, written.append, dict, linger_s=LINGER_S, linger_after_items=after_items
    )
    writer.start()
    return writer, written


def item_op(index: int) -> Op:
    return Op(
        inc={"next_index": 1},
        attempts=[{"_id": f"a{index}", "job_id": "j1", "slot": index}],
        items=[{"_id": f"i{index}", "job_id": "j1", "index": index}],
    )


async def submit_spaced(
    writer: JobWriter, first: int, count: int, gap_s: float
) -> list[asyncio.Future[None]]:
    futures = []
    for i in range(first, first + count):
        futures.append(writer.submit(item_op(i)))
        await asyncio.sleep(gap_s)
    return futures


async def test_a_long_job_gathers_its_operations_into_fewer_batches() -> None:
    repo = FakeGenerationRepository()
    writer, written = writer_for(repo, after_items=3)
    for future in await submit_spaced(writer, 0, 3, 0.02):  # not long yet: one batch per operation
        await future
    assert [len(b.items) for b in written] == [1, 1, 1]
    futures = await submit_spaced(writer, 3, 6, 0.02)
    await asyncio.gather(*futures)
    assert [len(b.items) for b in written[3:]] == [6]  # one batch, not six
    assert writer.lingered == 1
    assert repo.calls.count("write_batch") == 4
    assert sorted(repo.items) == [f"i{i}" for i in range(9)]
    await writer.close()


async def test_a_small_job_never_waits() -> None:
    repo = FakeGenerationRepository()
    writer, written = writer_for(repo, after_items=100)
    t0 = time.monotonic()
    for future in await submit_spaced(writer, 0, 5, 0.02):
        await future
    assert time.monotonic() - t0 < LINGER_S
    assert writer.lingered == 0
    assert len(written) == 5
    await writer.close()


async def test_a_job_level_event_a_full_queue_and_a_drain_are_written_at_once() -> None:
    repo = FakeGenerationRepository()
    writer, written = writer_for(repo, after_items=0)
    t0 = time.monotonic()
    writer.submit(item_op(0))
    event = Envelope(type="t", source="s", subject="j1", dataschema="urn", schemaversion=1, data={}, id="e1")
    await writer.submit(Op(set={"status": "completed"}, job_outbox=[({"id": "e1", "topic": "t"}, event)]))
    assert time.monotonic() - t0 < LINGER_S / 2
    t0 = time.monotonic()
    futures = [writer.submit(item_op(i)) for i in range(1, LINGER_FULL_OPS + 1)]
    await asyncio.gather(*futures)
    assert time.monotonic() - t0 < LINGER_S / 2
    assert sum(len(b.items) for b in written) == LINGER_FULL_OPS + 1
    t0 = time.monotonic()
    writer.submit(item_op(LINGER_FULL_OPS + 1))
    await writer.submit(Op())  # an empty operation drains the writer: whoever submits it waits for it
    assert time.monotonic() - t0 < LINGER_S / 2
    await writer.close()


async def test_closing_writes_what_gathers_without_waiting() -> None:
    repo = FakeGenerationRepository()
    writer, _written = writer_for(repo, after_items=0)
    await writer.submit(item_op(0))
    pending = writer.submit(item_op(1))
    await asyncio.sleep(0)
    t0 = time.monotonic()
    await writer.close()
    assert pending.done()
    assert time.monotonic() - t0 < LINGER_S / 2
