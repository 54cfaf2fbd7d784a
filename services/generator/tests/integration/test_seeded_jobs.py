"""Jobs with a seed dataset and samplers (issue 18 #1–#3, #5) on real Mongo and Kafka, the rows read from the real
templates app (its internal route): each item's prompt holds its row and sampled values, the item carries them as
provenance, a re-run with the same seed gives every target the same ones, a deleted dataset fails the job."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from services.generator.tests.integration.conftest import Harness
from services.generator.tests.support import command, template
from tests.support.names import unique
from tests.support.tokens import Signer, signing_key, verifier_for

from llmts_generator.adapters.datasets import DatasetRows
from llmts_templates.bootstrap import bootstrap
from llmts_templates.settings import TemplatesSettings

TOKEN = "seeded-jobs-token-0123456789abcdef"
VARIABLES: dict[str, Any] = {
    "tone": {"sampler": "category", "values": ["formal", "friendly"], "weights": [1, 1]},
    "stars": {"sampler": "uniform", "type": "int", "low": 1, "high": 5},
}
PROMPT = "Review of {{ product }} ({{ price }}), {{ tone }}, {{ stars }} stars."
SENT = re.compile(r"Review of (p\d+) \((\d+)\), (formal|friendly), (\d) stars\.")


@pytest.fixture(scope="module")
async def templates() -> AsyncIterator[tuple[httpx.AsyncClient, Signer]]:
    key = signing_key()
    settings = TemplatesSettings(
        mongo_db=f"llmts_gen_seeded_{uuid.uuid4().hex[:10]}",
        kafka_client_id=unique("gen-seeded-", 6),
        log_json=False,
        internal_token=TOKEN,
    )
    app, _ = bootstrap(settings, verifier=verifier_for(key))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://templates", timeout=30) as client:
            yield client, Signer(key)


@pytest.fixture
def seeded(h: Harness, templates: tuple[httpx.AsyncClient, Signer]) -> Iterator[Harness]:
    """The harness's generator reading seed rows from the templates app (restored afterwards)."""
    deps = h.gen.manager.deps
    before = deps.datasets
    deps.datasets = DatasetRows(templates[0], TOKEN)
    yield h
    deps.datasets = before


async def upload(templates: tuple[httpx.AsyncClient, Signer], owner: str, rows: int) -> str:
    client, signer = templates
    body = ("product,price\n" + "".join(f"p{i},{10 + i}\n" for i in range(rows))).encode()
    r = await client.post(
        "/datasets", params={"name": "products.csv"}, content=body, headers=signer.headers(owner)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def seeded_job(owner: str, dataset_id: str, **over: Any) -> Any:
    tpl = template(
        variables=VARIABLES,
        prompts={"system": "You write product reviews.", "user": PROMPT},
        seed={"dataset_id": dataset_id, "sampling": "shuffle"},
    )
    return command(owner, count=8, template=tpl, seed=11, cache="off", **over)


async def results(h: Harness, job_id: str, owner: str) -> list[dict[str, Any]]:
    r = await h.http.get(f"/generate/{job_id}/result", params={"limit": 100}, headers=h.auth(owner))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def by_target(items: list[dict[str, Any]]) -> dict[int, tuple[Any, Any]]:
    return {i["inputs"]["target"]: (i["provenance"]["seed_row"], i["provenance"]["sampled"]) for i in items}


async def test_items_get_their_row_and_sampled_values_the_same_on_a_rerun(
    seeded: Harness, templates: tuple[httpx.AsyncClient, Signer]
) -> None:
    h = seeded
    owner = f"u-{uuid.uuid4().hex[:8]}"
    dataset_id = await upload(templates, owner, 5)
    msg = seeded_job(owner, dataset_id)
    h.fake.reset()
    doc = await h.run(msg)
    assert doc["status"] == "completed", doc.get("error")
    sent = [
        SENT.search(m["content"])
        for r in h.fake.stats()["last_requests"]
        if r["path"].endswith("/chat/completions")
        for m in r["body"]["messages"]
        if m["role"] == "user"
    ]
    prompts = [m.groups() for m in sent if m is not None]
    assert len(prompts) >= 8
    assert all(price == str(10 + int(product[1:])) for product, price, _, _ in prompts)  # one row, whole
    items = await results(h, msg.job_id, owner)
    assert len(items) == 8
    for item in items:
        prov = item["provenance"]
        assert prov["dataset_id"] == dataset_id
        assert 0 <= prov["seed_row"] < 5
        assert prov["sampled"]["tone"] in ("formal", "friendly")
        assert 1 <= prov["sampled"]["stars"] <= 5
        assert prov["model"] == msg.model.id
        assert prov["attempts"] >= 1
        assert prov["task_index"] == item["inputs"]["task_index"]
    # shuffle: the first 5 targets see every row once
    rows = by_target(items)
    assert sorted(rows[t][0] for t in range(5)) == [0, 1, 2, 3, 4]
    # the events carry the same provenance
    events = [e for e in h.tap.events(msg.job_id) if e["type"].endswith("item_generated")]
    assert {e["data"]["index"]: e["data"]["provenance"] for e in events} == {
        i["index"]: i["provenance"] for i in items
    }
    # the diversity report: on the job (history) and in the completed event
    r = await h.http.get(f"/history/{msg.job_id}", headers=h.auth(owner))
    assert r.status_code == 200, r.text
    report = r.json()["diversity"]
    assert report["items"] == 8
    assert report["categories"]["tone"]["values"]["formal"]["target"] == 0.5
    assert report["categories"]["tone"]["max_dev_pp"] <= 50
    done = [e for e in h.tap.events(msg.job_id) if e["type"].endswith(".completed")]
    assert done[-1]["data"]["diversity"] == report
    # the preview of the same request draws the same (the job's seed was given)
    r = await h.http.post(
        "/preview", json={"request": msg.model_dump(mode="json"), "items": 3}, headers=h.auth(owner)
    )
    assert r.status_code == 200, r.text
    assert {i["index"]: (i["seed_row"], i["sampled"]) for i in r.json()["items"]} == {
        t: rows[t] for t in range(3)
    }
    gone = seeded_job(owner, "0" * 32)
    r = await h.http.post("/preview", json={"request": gone.model_dump(mode="json")}, headers=h.auth(owner))
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "dataset_not_found"
    # the same job seed again: every target gets the same row and values
    again = seeded_job(owner, dataset_id)
    assert (await h.run(again))["status"] == "completed"
    assert by_target(await results(h, again.job_id, owner)) == rows


async def test_a_deleted_or_foreign_dataset_fails_the_job(
    seeded: Harness, templates: tuple[httpx.AsyncClient, Signer]
) -> None:
    h = seeded
    owner = f"u-{uuid.uuid4().hex[:8]}"
    dataset_id = await upload(templates, owner, 3)
    foreign = await h.run(seeded_job("someone-else", dataset_id))
    assert foreign["status"] == "failed"
    assert foreign["error"]["code"] == "dataset_not_found"
    client, signer = templates
    r = await client.delete(f"/datasets/{dataset_id}", headers=signer.headers(owner))
    assert r.status_code == 204, r.text
    msg = seeded_job(owner, dataset_id)
    doc = await h.run(msg)
    assert doc["status"] == "failed"
    assert doc["error"]["code"] == "dataset_not_found"
    assert doc["counts"]["attempts"] == 0  # nothing was asked of the model
    failed = [e for e in h.tap.events(msg.job_id) if e["type"].endswith(".failed")]
    assert failed[-1]["data"]["code"] == "dataset_not_found"
