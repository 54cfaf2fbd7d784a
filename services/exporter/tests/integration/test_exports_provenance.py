"""Provenance on the real local Kafka and MongoDB-wire server: a job whose items came from two models (a
fallback chain moved it) exports each item's model, task and attempts — by default (``auto``) — in csv,
parquet and json; a one-model job shows none unless asked; ``provenance: false`` hides it."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import pyarrow.parquet as pq
import pytest

from llmts_common.contracts import ExportRequested, ItemGenerated, ModelUsed, Usage

from .conftest import Stack, job_completed, job_started, make_items

N = 12
SWITCH_AT = 5  # items 0..4 from the primary model, the rest from the fallback
PRIMARY = ModelUsed(provider="ollama", id="smollm2:135m")
BACKUP = ModelUsed(provider=None, id="openai/gpt-4o-mini")


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def _items(job_id: str, user_id: str, data: list[Any], *, switch_at: int) -> list[ItemGenerated]:
    return [
        ItemGenerated(
            job_id=job_id,
            user_id=user_id,
            index=i,
            data=item,
            attempts=1 + i % 3,
            usage=Usage(
                prompt_tokens=10 + i, completion_tokens=20, cost_usd=0.0 if i < switch_at else 0.0002
            ),
            content_hash=f"h{i}",
            model=PRIMARY if i < switch_at else BACKUP,
            inputs={"target": i, "task": i % 2, "task_index": i // 2, "row": {"тема": f"t{i % 2}"}},
        )
        for i, item in enumerate(data)
    ]


async def _job(stack: Stack, *, switch_at: int) -> tuple[str, str]:
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    await stack.publish(
        job_started(job_id, user_id, N),
        *_items(job_id, user_id, make_items(N), switch_at=switch_at),
        job_completed(job_id, user_id, N),
    )
    return job_id, user_id


@pytest.fixture(scope="module")
async def switched_job(stack: Stack) -> tuple[str, str]:
    return await _job(stack, switch_at=SWITCH_AT)


async def _export(stack: Stack, job_id: str, user_id: str, fmt: str, **options: Any) -> bytes:
    export_id = _uid()
    await stack.publish(
        ExportRequested(export_id=export_id, job_id=job_id, user_id=user_id, format=fmt, options=options)
    )
    event = await stack.events.wait_for(export_id)
    assert event.type == "llmts.export.ready", event.data
    r = await stack.http.get(f"/exports/{export_id}/download", headers=stack.signer.headers(user_id))
    assert r.status_code == 200, r.text
    return r.content


def _expected_models() -> list[str]:
    return [PRIMARY.id if i < SWITCH_AT else BACKUP.id for i in range(N)]


async def test_csv_of_a_switched_job_shows_each_items_model_by_default(
    stack: Stack, switched_job: tuple[str, str]
) -> None:
    rows = list(csv.DictReader(io.StringIO((await _export(stack, *switched_job, "csv")).decode())))
    assert [r["_model"] for r in rows] == _expected_models()
    assert [r["_provider"] for r in rows] == ["ollama"] * SWITCH_AT + [""] * (N - SWITCH_AT)
    assert [int(r["_index"]) for r in rows] == list(range(N))
    assert [int(r["_attempts"]) for r in rows] == [1 + i % 3 for i in range(N)]
    assert [int(r["_task"]) for r in rows] == [i % 2 for i in range(N)]
    assert json.loads(rows[3]["_row"]) == {"тема": "t1"}
    assert rows[0]["name"] == "Товар №0 «Ёлка»"


async def test_parquet_and_json_carry_the_same_provenance(
    stack: Stack, switched_job: tuple[str, str]
) -> None:
    table = pq.read_table(io.BytesIO(await _export(stack, *switched_job, "parquet")))
    assert table.column("_model").to_pylist() == _expected_models()
    assert table.column("_prompt_tokens").to_pylist() == [10 + i for i in range(N)]
    meta = json.loads(table.schema.metadata[b"llmts.meta"])
    assert meta["models"] == ["ollama/smollm2:135m", "openai/gpt-4o-mini"]
    items = json.loads(await _export(stack, *switched_job, "json"))
    assert [i["_provenance"]["model"] for i in items] == _expected_models()
    assert items[7]["_provenance"]["cost_usd"] == 0.0002


async def test_provenance_false_hides_it(stack: Stack, switched_job: tuple[str, str]) -> None:
    header = (await _export(stack, *switched_job, "csv", provenance=False)).decode().splitlines()[0]
    assert "_model" not in header


async def test_a_one_model_job_shows_it_only_when_asked(stack: Stack) -> None:
    job = await _job(stack, switch_at=N)
    assert "_model" not in (await _export(stack, *job, "csv")).decode().splitlines()[0]
    rows = list(csv.DictReader(io.StringIO((await _export(stack, *job, "csv", provenance=True)).decode())))
    assert {r["_model"] for r in rows} == {PRIMARY.id}


async def test_a_seeded_job_exports_its_rows_sampled_values_and_diversity_report(stack: Stack) -> None:
    """Issue 18: provenance of seeded items (row number, sampled values, judge scores) and the diversity report
    kept from GenerationCompleted, appended by the ``diversity`` option (xlsx sheet, parquet metadata)."""
    job_id, user_id = f"job-{_uid()}", f"user-{_uid()}"
    report = {"items": N, "distinct_1": 0.5, "categories": {"tone": {"values": {}, "max_dev_pp": 1.5}}}
    items = [
        item.model_copy(
            update={
                "provenance": {
                    "task_index": i,
                    "dataset_id": "ds-1",
                    "seed_row": N - i,
                    "sampled": {"tone": "formal"},
                    "judge": {"quality": 4},
                }
            }
        )
        for i, item in enumerate(_items(job_id, user_id, make_items(N), switch_at=N))
    ]
    done = job_completed(job_id, user_id, N).model_copy(update={"diversity": report})
    await stack.publish(job_started(job_id, user_id, N), *items, done)
    rows = list(
        csv.DictReader(io.StringIO((await _export(stack, job_id, user_id, "csv", provenance=True)).decode()))
    )
    assert [r["_seed_row"] for r in rows] == [str(N - i) for i in range(N)]
    assert json.loads(rows[0]["_sampled"]) == {"tone": "formal"}
    assert json.loads(rows[0]["_judge"]) == {"quality": 4}
    table = pq.read_table(io.BytesIO(await _export(stack, job_id, user_id, "parquet", diversity=True)))
    assert json.loads(table.schema.metadata[b"llmts.diversity"]) == report
    doc = json.loads(await _export(stack, job_id, user_id, "json", diversity=True))
    assert doc["diversity"] == report
    assert len(doc["items"]) == N
