"""A job's own seed dataset (issue 18): ``dataset`` of the job body is copied into the command (the generator uses it
instead of the template's ``seed``); a malformed one is refused by the body model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from services.gateway.tests.unit.test_jobs_domain import create, snapshot

from llmts_common.contracts import ModelRef
from llmts_gateway.domain import jobs

DS = "0123456789abcdef0123456789abcdef"


def command(**fields: Any) -> Any:
    return jobs.new_command(
        create(**fields),
        template=snapshot(),
        model=ModelRef(provider="openrouter", id="m-1"),
        tasks=[],
        count=3,
        mode="none",
        job_id="job-1",
        user_id="u-1",
        now=datetime.now(UTC),
    )


def test_the_job_dataset_is_copied_into_the_command() -> None:
    cmd = command(count=3, dataset={"dataset_id": DS, "sampling": "shuffle", "columns": ["title"]})
    assert cmd.dataset is not None
    assert cmd.dataset.model_dump() == {"dataset_id": DS, "sampling": "shuffle", "columns": ["title"]}
    assert command(count=3).dataset is None  # the template's seed, if any, applies


@pytest.mark.parametrize(
    "bad",
    [
        {"dataset_id": DS, "sampling": "random"},
        {"sampling": "ordered"},
        {"dataset_id": DS, "extra": 1},
    ],
)
def test_a_malformed_dataset_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        create(count=3, dataset=bad)
