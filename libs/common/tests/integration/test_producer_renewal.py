"""A wedged idempotent producer is replaced by a fresh one (real broker): once per failure, and publishing goes on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from llmts_common.kafka import create_broker
from llmts_common.kafka_security import faststream_security
from llmts_common.producer_renewal import _current, publish_renewing, renew_producer


async def test_renewal_replaces_the_producer_once_and_publishing_goes_on(
    kafka_bootstrap: str, unique_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = create_broker(
        kafka_bootstrap, client_id=f"renew-{uuid.uuid4().hex[:6]}", security=faststream_security()
    )
    await broker.start()
    try:
        first = _current(broker)
        await broker.publish(b"before", topic=unique_topic, key=b"k")
        assert await renew_producer(broker, first)
        second = _current(broker)
        assert second is not first
        assert not await renew_producer(broker, first)  # another caller saw the same failure: renewed once
        await broker.publish(b"after", topic=unique_topic, key=b"k")  # the fresh producer works

        real = broker.publish
        calls: list[int] = []

        async def wedged(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                raise OutOfOrderSequenceNumber()
            return await real(*args, **kwargs)

        monkeypatch.setattr(broker, "publish", wedged)
        with pytest.raises(OutOfOrderSequenceNumber):
            await publish_renewing(broker, b"x", topic=unique_topic, key=b"k")
        assert _current(broker) is not second  # renewed by the failure
        await publish_renewing(broker, b"y", topic=unique_topic, key=b"k")  # the retry goes through
    finally:
        await broker.stop()
