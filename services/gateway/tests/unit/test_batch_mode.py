"""Batch mode at admission: the gateway copies ``mode`` / ``batch_fallback`` into the command and refuses a batch
job whose model's provider has no Batch API (422 ``batch_unsupported``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from services.gateway.tests.unit.test_jobs_domain import create, snapshot

from llmts_common.contracts import ModelRef
from llmts_common.contracts.common_models import NearDuplicates, StageSpec, ValidationSpec
from llmts_common.errors import Unprocessable
from llmts_gateway.domain import jobs


def command(provider: str | None, **fields: Any) -> Any:
    return jobs.new_command(
        create(**fields),
        template=snapshot(),
        model=ModelRef(provider=provider, id="m-1"),
        tasks=[],
        count=3,
        mode="none",
        job_id="job-1",
        user_id="u-1",
        now=datetime.now(UTC),
    )


def test_mode_and_fallback_are_copied_into_the_command() -> None:
    cmd = command("openai-compatible", count=3, mode="batch", batch_fallback="sync")
    assert (cmd.mode, cmd.batch_fallback) == ("batch", "sync")
    jobs.check_batch_mode(cmd)  # the openai-compatible provider has a Batch API


def test_a_sync_job_is_the_default() -> None:
    cmd = command("openrouter", count=3)
    assert (cmd.mode, cmd.batch_fallback) == ("sync", "batch")
    jobs.check_batch_mode(cmd)


@pytest.mark.parametrize("provider", ["openrouter", "ollama", None])
def test_a_batch_job_on_a_provider_without_batch_api_is_422(provider: str | None) -> None:
    with pytest.raises(Unprocessable) as err:
        jobs.check_batch_mode(command(provider, count=3, mode="batch"))
    assert err.value.code == "batch_unsupported"
    assert err.value.details["field"] == "mode"


def test_a_batch_job_of_a_multi_stage_template_is_422() -> None:
    stage = {"name": "faq", "prompts": {"user": "FAQ for {{ main.title }}"}, "schema": {"type": "object"}}
    cmd = command("openai-compatible", count=3, mode="batch")
    staged = cmd.model_copy(
        update={"template": cmd.template.model_copy(update={"stages": [StageSpec.model_validate(stage)]})}
    )
    with pytest.raises(Unprocessable) as err:
        jobs.check_batch_mode(staged)
    assert err.value.code == "batch_unsupported"
    assert err.value.details == {"field": "mode", "stages": ["faq"]}
    jobs.check_batch_mode(staged.model_copy(update={"mode": "sync"}))


def test_a_batch_job_of_a_template_with_near_duplicate_control_is_422() -> None:
    cmd = command("openai-compatible", count=3, mode="batch")
    validation = ValidationSpec(near_duplicates=NearDuplicates(threshold=0.7))
    cmd = cmd.model_copy(update={"template": cmd.template.model_copy(update={"validation": validation})})
    with pytest.raises(Unprocessable) as err:
        jobs.check_batch_mode(cmd)
    assert err.value.details == {"field": "mode", "feature": "near-duplicate control"}
    jobs.check_batch_mode(cmd.model_copy(update={"mode": "sync"}))  # a sync job runs it
