"""Seed datasets through the templates app on the real Mongo-wire server: upload (CSV, JSONL, Parquet), inferred
columns, rows across chunk boundaries, errors naming the line, limits, owner isolation, the internal rows route."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.support.names import unique, unique_db, unique_user

from llmts_common.auth import JwksVerifier
from llmts_templates.adapters.erasure import MongoUserErasure
from llmts_templates.bootstrap import bootstrap
from llmts_templates.settings import TemplatesSettings

CSV = "text/csv"


def _csv(n: int) -> bytes:
    lines = ["sku,title,price,in_stock,note"]
    lines += [
        f"S-{i:05d},Item {i},{i}.5,{'true' if i % 2 else 'false'},{'' if i % 3 else 'x'}" for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


async def _upload(
    client: httpx.AsyncClient,
    who: dict[str, str],
    body: bytes,
    name: str,
    media: str | None = CSV,
    **params: Any,
) -> httpx.Response:
    headers = {**who, **({"Content-Type": media} if media else {})}
    return await client.post("/datasets", params={"name": name, **params}, content=body, headers=headers)


async def test_csv_upload_infers_columns_and_serves_rows_across_chunks(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    r = await _upload(client, alice, _csv(2500), "products")
    assert r.status_code == 201, r.text
    ds = r.json()
    assert (ds["name"], ds["format"], ds["rows"]) == ("products", "csv", 2500)
    assert ds["created_at"].endswith("Z")
    cols = {c["name"]: (c["type"], c["nullable"]) for c in ds["columns"]}
    assert cols == {
        "sku": ("string", False),
        "title": ("string", False),
        "price": ("number", False),
        "in_stock": ("boolean", False),
        "note": ("string", True),
    }
    one = (await client.get(f"/datasets/{ds['id']}", headers=alice)).json()
    assert one["sample"][0] == {
        "sku": "S-00000",
        "title": "Item 0",
        "price": "0.5",
        "in_stock": "false",
        "note": "x",
    }
    page = (
        await client.get(f"/datasets/{ds['id']}/rows", params={"offset": 995, "limit": 10}, headers=alice)
    ).json()
    assert [row["sku"] for row in page["rows"]] == [f"S-{i:05d}" for i in range(995, 1005)]
    assert page["total"] == 2500
    tail = (
        await client.get(f"/datasets/{ds['id']}/rows", params={"offset": 2498, "limit": 50}, headers=alice)
    ).json()
    assert [row["sku"] for row in tail["rows"]] == ["S-02498", "S-02499"]
    listed = (await client.get("/datasets", headers=alice)).json()
    assert ds["id"] in [d["id"] for d in listed["items"]]
    assert (await client.delete(f"/datasets/{ds['id']}", headers=alice)).status_code == 204
    assert (await client.get(f"/datasets/{ds['id']}", headers=alice)).status_code == 404


async def test_csv_with_bom_cyrillic_and_a_quoted_multiline_field(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    body = '\ufeffтовар,описание\nЧайник,"Электрический,\nстальной"\nКружка,Фарфор\n'.encode()
    r = await _upload(client, alice, body, "товары.csv", media=None)
    assert r.status_code == 201, r.text
    rows = (await client.get(f"/datasets/{r.json()['id']}/rows", headers=alice)).json()["rows"]
    assert rows == [
        {"товар": "Чайник", "описание": "Электрический,\nстальной"},
        {"товар": "Кружка", "описание": "Фарфор"},
    ]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        (b"a,b\n1,2\n3,4\n5\n", 4, "expected 2 fields, got 1"),
        (b"a,b\n1,2\n\xff\xfe,3\n", 3, "not UTF-8"),
        (b"a,a\n1,2\n", 1, "duplicate column names"),
        (b'a,b\n1,2\n"unclosed,3\n', 3, "malformed CSV"),
    ],
)
async def test_a_bad_csv_is_refused_naming_its_line(
    client: httpx.AsyncClient, alice: dict[str, str], body: bytes, line: int, words: str
) -> None:
    r = await _upload(client, alice, body, "bad")
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_dataset"
    assert err["details"]["line"] == line
    assert words in err["message"]
    assert f"line {line}" in err["message"]


async def test_jsonl_keeps_types_and_names_a_bad_line(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    good = b'{"q": "2+2", "n": 4, "tags": ["math"], "meta": {"level": 1}}\n\n{"q": "capital", "n": null}\n'
    r = await _upload(client, alice, good, "qa", media="application/x-ndjson")
    assert r.status_code == 201, r.text
    cols = {c["name"]: (c["type"], c["nullable"]) for c in r.json()["columns"]}
    assert cols == {
        "q": ("string", False),
        "n": ("integer", True),
        "tags": ("array", True),
        "meta": ("object", True),
    }
    rows = (await client.get(f"/datasets/{r.json()['id']}/rows", headers=alice)).json()["rows"]
    assert rows[0] == {"q": "2+2", "n": 4, "tags": ["math"], "meta": {"level": 1}}
    bad = await _upload(client, alice, b'{"q": 1}\n[1, 2]\n', "qa", media="application/jsonl")
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["line"] == 2


async def test_parquet_upload(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    table = pa.table({"id": [1, 2, 3], "name": ["a", "b", None], "score": [0.5, 1.5, 2.5]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = await _upload(client, alice, buf.getvalue(), "scores", media=None, format="parquet")
    assert r.status_code == 201, r.text
    cols = {c["name"]: (c["type"], c["nullable"]) for c in r.json()["columns"]}
    assert cols == {"id": ("integer", False), "name": ("string", True), "score": ("number", False)}
    not_parquet = await _upload(client, alice, b"PAR1 nope", "x", media="application/vnd.apache.parquet")
    assert not_parquet.status_code == 422


async def test_format_must_be_known_and_the_file_not_empty(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    unknown = await _upload(client, alice, b"a\n1\n", "noext", media="application/octet-stream")
    assert unknown.status_code == 422
    assert "format" in unknown.json()["error"]["message"]
    empty = await _upload(client, alice, b"", "e.csv")
    assert empty.status_code == 422
    header_only = await _upload(client, alice, b"a,b\n", "h.csv")
    assert header_only.status_code == 422
    assert "no rows" in header_only.json()["error"]["message"]


async def test_datasets_are_private(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    ds = (await _upload(client, alice, _csv(3), "mine")).json()
    for method, path in (("GET", ""), ("GET", "/rows"), ("DELETE", "")):
        r = await client.request(method, f"/datasets/{ds['id']}{path}", headers=bob)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "dataset_not_found"
    assert ds["id"] not in [d["id"] for d in (await client.get("/datasets", headers=bob)).json()["items"]]
    assert (await client.get("/datasets", params={"sort": "x"}, headers=alice)).status_code == 422


@pytest.fixture(scope="module")
async def small(verifier: JwksVerifier) -> AsyncIterator[httpx.AsyncClient]:
    """An app with tiny dataset limits and an internal token."""
    settings = TemplatesSettings(
        mongo_db=unique_db("templates_ds"),
        kafka_client_id=unique("templates-ds-", 6),
        log_json=False,
        dataset_max_bytes=2000,
        dataset_max_rows=50,
        datasets_per_user=2,
        internal_token="it-token-123456789012345678901234",
    )
    app, runtime = bootstrap(settings, verifier=verifier)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://templates", timeout=30) as c:
            c.app_db = runtime.db  # type: ignore[attr-defined]
            yield c


async def test_limits_bytes_rows_and_count(
    small: httpx.AsyncClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    who = token_for(unique_user("carol"))

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a,b\n"
        for _ in range(100):
            yield b"1,2\n" * 10

    big = await small.post(
        "/datasets", params={"name": "big"}, content=chunks(), headers={**who, "Content-Type": CSV}
    )
    assert big.status_code == 413, big.text
    assert big.json()["error"]["code"] == "payload_too_large"
    rows = await _upload(small, who, b"a\n" + b"1\n" * 60, "rows")  # 123 bytes, 60 rows
    assert rows.status_code == 422, rows.text
    assert "more than 50 rows" in rows.json()["error"]["message"]
    assert (await _upload(small, who, _csv(3), "one")).status_code == 201
    assert (await _upload(small, who, _csv(3), "two")).status_code == 201
    third = await _upload(small, who, _csv(3), "three")
    assert third.status_code == 409
    assert third.json()["error"]["code"] == "dataset_limit_reached"


async def test_internal_rows_need_the_token_and_the_owner(
    small: httpx.AsyncClient, token_for: Callable[[str], dict[str, str]]
) -> None:
    owner = unique_user("dave")
    ds = (await _upload(small, token_for(owner), _csv(5), "d")).json()
    path = f"/internal/datasets/{ds['id']}/rows"
    assert (await small.get(path, params={"user_id": owner})).status_code == 401
    ok = await small.get(path, params={"user_id": owner, "offset": 2, "limit": 2},
                         headers={"X-Internal-Token": "it-token-123456789012345678901234"})  # fmt: skip
    assert [r["sku"] for r in ok.json()["rows"]] == ["S-00002", "S-00003"]
    other = await small.get(path, params={"user_id": "someone-else"},
                            headers={"X-Internal-Token": "it-token-123456789012345678901234"})  # fmt: skip
    assert other.status_code == 404
    erased = await MongoUserErasure(small.app_db).erase(owner)  # type: ignore[attr-defined]
    assert erased["datasets"] == 1
    gone = await small.get(path, params={"user_id": owner},
                           headers={"X-Internal-Token": "it-token-123456789012345678901234"})  # fmt: skip
    assert gone.status_code == 404
    assert json.loads(gone.text)["error"]["code"] == "dataset_not_found"
