"""The generator's seed-dataset reader against the real templates app (its internal rows route, real Mongo)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support.names import unique
from tests.support.tokens import Signer, signing_key, verifier_for

from llmts_generator.adapters.datasets import DatasetGone, DatasetRows, DatasetsUnavailable
from llmts_templates.bootstrap import bootstrap
from llmts_templates.settings import TemplatesSettings

TOKEN = "dataset-rows-token-0123456789abcdef"


@pytest.fixture(scope="module")
async def templates() -> AsyncIterator[tuple[httpx.AsyncClient, Signer]]:
    key = signing_key()
    settings = TemplatesSettings(
        mongo_db=f"llmts_gen_rows_{uuid.uuid4().hex[:10]}",
        kafka_client_id=unique("gen-rows-", 6),
        log_json=False,
        internal_token=TOKEN,
    )
    app, _ = bootstrap(settings, verifier=verifier_for(key))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://templates", timeout=30) as client:
            yield client, Signer(key)


async def test_rows_come_page_by_page_and_stay_private(templates: tuple[httpx.AsyncClient, Signer]) -> None:
    client, signer = templates
    owner = f"u-{uuid.uuid4().hex[:8]}"
    body = ("n,word\n" + "".join(f"{i},w{i}\n" for i in range(2300))).encode()
    r = await client.post(
        "/datasets", params={"name": "words.csv"}, content=body, headers=signer.headers(owner)
    )
    assert r.status_code == 201, r.text
    dataset_id = r.json()["id"]
    reader = DatasetRows(client, TOKEN, page_rows=1000, max_pages=2)
    assert await reader.total(owner, dataset_id) == 2300
    assert await reader.row(owner, dataset_id, 0) == {"n": "0", "word": "w0"}
    assert await reader.row(owner, dataset_id, 1999) == {"n": "1999", "word": "w1999"}
    assert await reader.row(owner, dataset_id, 2299) == {"n": "2299", "word": "w2299"}
    assert await reader.row(owner, dataset_id, 5) == {"n": "5", "word": "w5"}  # page 0 again, after eviction
    with pytest.raises(DatasetGone):
        await reader.row(owner, dataset_id, 2300)
    with pytest.raises(DatasetGone):
        await DatasetRows(client, TOKEN).row("someone-else", dataset_id, 0)
    with pytest.raises(DatasetsUnavailable):
        await DatasetRows(client, "wrong-token").row(owner, dataset_id, 0)


async def test_a_deleted_dataset_is_noticed_although_its_rows_were_read_before(
    templates: tuple[httpx.AsyncClient, Signer],
) -> None:
    client, signer = templates
    owner = f"u-{uuid.uuid4().hex[:8]}"
    r = await client.post(
        "/datasets", params={"name": "few.csv"}, content=b"n\n1\n2\n", headers=signer.headers(owner)
    )
    assert r.status_code == 201, r.text
    dataset_id = r.json()["id"]
    reader = DatasetRows(client, TOKEN)
    assert await reader.total(owner, dataset_id) == 2
    assert await reader.row(owner, dataset_id, 1) == {"n": "2"}  # its page is cached now
    r = await client.delete(f"/datasets/{dataset_id}", headers=signer.headers(owner))
    assert r.status_code == 204, r.text
    with pytest.raises(DatasetGone):  # the next job's start asks again
        await reader.total(owner, dataset_id)
    with pytest.raises(DatasetGone):  # and the rows it had are dropped
        await reader.row(owner, dataset_id, 1)
