"""A job's first provider calls do not wait for its started write to be durable (issue 14: behind another user's
backlog that database round trip took 20-300 ms of a small job's time); the writer still stores it, and the flusher
publishes GenerationStarted, before anything the slots submit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from services.generator.tests.fakes import ScriptedProvider
from services.generator.tests.unit.test_runner import command, harness, review

from llmts_common.contracts import GenerationStarted
from llmts_providers import ChatRequest


async def test_calls_start_while_the_started_write_is_in_flight_and_it_is_still_first() -> None:
    h = harness()
    msg = command(3)
    await h.submit(msg)
    released = asyncio.Event()
    durable: list[bool] = []
    write_batch = h.repo.write_batch

    async def held_first_write(
        job_id: str, owner: str, run: int, seq: int, update: Mapping[str, Any]
    ) -> None:
        if seq == 1:  # the started write
            await released.wait()
        await write_batch(job_id, owner, run, seq, update)
        durable.append(True)

    h.repo.write_batch = held_first_write  # type: ignore[method-assign]

    async def script(call: int, _req: ChatRequest) -> str:
        if call == 1:
            assert durable == []  # the call started before the started write was stored
            released.set()
        return review(call)

    runner = await h.claim(msg, ScriptedProvider(script))
    assert (
        await asyncio.wait_for(runner.run(), 30) == "completed"
    )  # hang guard: awaited, the write never ends
    types = [env.type for env, _topic in h.events.published if env.data.get("job_id") == msg.job_id]
    assert types[0] == GenerationStarted.TYPE  # published before the items all the same
    assert h.repo.jobs[msg.job_id]["status"] == "completed"
    assert h.repo.jobs[msg.job_id]["started_at"] is not None
