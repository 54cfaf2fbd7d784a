"""Which publish failures park an outbox entry at once, and how long a failing one waits."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from pydantic import ValidationError

from llmts_common.envelope import Envelope
from llmts_common.outbox import permanent_failure, retry_delay


def _invalid_envelope_error() -> ValidationError:
    try:
        Envelope.model_validate({"id": 1})
    except ValidationError as exc:
        return exc
    raise AssertionError("expected a validation error")


@pytest.mark.parametrize(
    "exc",
    [MessageSizeTooLargeError(), TopicAuthorizationFailedError(), _invalid_envelope_error()],
)
def test_permanent_failures(exc: Exception) -> None:
    assert permanent_failure(exc)


@pytest.mark.parametrize(
    "exc",
    [KafkaConnectionError(), KafkaTimeoutError(), NotLeaderForPartitionError(), OSError(), RuntimeError()],
)
def test_transient_failures(exc: Exception) -> None:
    assert not permanent_failure(exc)


def test_retry_delay_grows_and_is_capped() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(30) == 60.0
