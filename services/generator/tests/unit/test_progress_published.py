"""A progress event never counts an item whose event has not been published before it (the scheduler counts an
item when it is accepted, before the writer stores it and the flusher publishes it)."""

from __future__ import annotations

from services.generator.tests.fakes import FakeEvents, FakeGenerationRepository

from llmts_common.contracts import GenerationCompleted, GenerationProgress, ItemGenerated, ItemRejected, Usage
from llmts_generator.flusher import JobFlusher
from llmts_generator.folding import Batch

JOB = "job-progress"


def _item(index: int) -> ItemGenerated:
    return ItemGenerated(
        job_id=JOB,
        user_id="u1",
        index=index,
        data={"n": index},
        attempts=1,
        usage=Usage(),
        content_hash=str(index),
    )


def _rejection(number: int) -> ItemRejected:
    return ItemRejected(job_id=JOB, user_id="u1", slot=number, reason="invalid", attempts=3)


def _progress() -> GenerationProgress:
    """What the scheduler says now: 5 accepted and 2 rejected, more than the flusher has published."""
    return GenerationProgress(
        job_id=JOB,
        user_id="u1",
        requested=10,
        succeeded=5,
        rejected=2,
        in_flight=3,
        attempts=9,
        usage=Usage(),
    )


async def test_progress_counts_only_the_items_published_before_it() -> None:
    events = FakeEvents()
    flusher = JobFlusher(FakeGenerationRepository(), events, JOB, _progress)
    flusher.start()
    published = [(events.envelope_for(m), m.TOPIC) for m in (_item(0), _item(1), _rejection(0))]
    flusher.enqueue(
        Batch(
            items=[{"index": 0}, {"index": 1}, {"index": -1}],
            attempts=[],
            publish=[(env, topic, None) for env, topic in published],
        )
    )
    await flusher.close()

    types = [env.type for env, _ in events.published]
    assert types == [ItemGenerated.TYPE, ItemGenerated.TYPE, ItemRejected.TYPE, GenerationProgress.TYPE]
    progress = events.published[-1][0].data
    assert (progress["succeeded"], progress["rejected"]) == (2, 1)
    assert (progress["requested"], progress["in_flight"]) == (10, 3)


async def test_progress_of_a_resumed_job_counts_what_earlier_runs_published() -> None:
    events = FakeEvents()
    flusher = JobFlusher(
        FakeGenerationRepository(), events, JOB, _progress, published_index=3, published_rejected=0
    )
    flusher.start()
    env = events.envelope_for(_item(4))
    flusher.enqueue(Batch(items=[{"index": 4}], attempts=[], publish=[(env, ItemGenerated.TOPIC, None)]))
    await flusher.close()
    progress = events.published[-1][0].data
    assert (progress["succeeded"], progress["rejected"]) == (5, 1)


async def test_no_progress_follows_the_terminal_event() -> None:
    events = FakeEvents()
    flusher = JobFlusher(FakeGenerationRepository(), events, JOB, _progress)
    flusher.start()
    done = GenerationCompleted(
        job_id=JOB, user_id="u1", status="completed", requested=1, succeeded=1, rejected=0, attempts=1,
        usage=Usage(), duration_seconds=1.0,
    )  # fmt: skip
    published = [(events.envelope_for(m), m.TOPIC) for m in (_item(0), done)]
    flusher.enqueue(Batch(items=[{"index": 0}], attempts=[], publish=[(e, t, None) for e, t in published]))
    await flusher.close()
    assert [env.type for env, _ in events.published] == [ItemGenerated.TYPE, GenerationCompleted.TYPE]
