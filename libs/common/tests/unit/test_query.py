from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from llmts_common.query import reject_unknown_query
from llmts_common.web import create_app


class ListQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    tag: list[str] = Field(default_factory=list)
    from_: int | None = Field(default=None, alias="from")
    limit: int = 20


async def _page(cursor: Annotated[str | None, Query(alias="after")] = None) -> str | None:
    return cursor


def _client() -> httpx.AsyncClient:
    app = create_app(service="t", title="t")
    router = APIRouter(prefix="/things", dependencies=[Depends(reject_unknown_query)])

    @router.get("")
    async def list_(query: Annotated[ListQuery, Query()]) -> dict[str, object]:
        return {"tag": query.tag, "limit": query.limit}

    @router.get("/{thing_id}")
    async def get(thing_id: str, verbose: bool = False) -> dict[str, object]:
        return {"id": thing_id, "verbose": verbose}

    @router.get("/{thing_id}/page")
    async def page(thing_id: str, after: Annotated[str | None, Depends(_page)]) -> dict[str, object]:
        return {"after": after}

    app.include_router(router)

    @app.get("/free")
    async def free(x: int = 0) -> dict[str, int]:
        return {"x": x}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


async def test_known_parameters_pass_repeated_and_by_alias() -> None:
    async with _client() as c:
        r = await c.get("/things", params=[("tag", "a"), ("tag", "b"), ("limit", "5"), ("from", "2")])
        assert r.status_code == 200, r.text
        assert r.json() == {"tag": ["a", "b"], "limit": 5}
        assert (await c.get("/things", params={"from_": "2"})).status_code == 200  # populate_by_name
        assert (await c.get("/things/x", params={"verbose": "true"})).json()["verbose"] is True
        assert (await c.get("/things/x/page", params={"after": "k"})).json() == {"after": "k"}
        assert (await c.get("/things/x")).status_code == 200


async def test_unknown_parameters_are_422_with_each_name() -> None:
    async with _client() as c:
        r = await c.get("/things", params=[("tags", "a"), ("sort", "x"), ("tags", "b")])
        assert r.status_code == 422
        err = r.json()["error"]
        assert err["code"] == "validation_error"
        assert "tags" in err["message"]
        assert [d["loc"] for d in err["details"]] == [["query", "tags"], ["query", "sort"]]
        assert {d["type"] for d in err["details"]} == {"extra_forbidden"}
        assert "accepted: from, from_, limit, tag" in err["details"][0]["msg"]
        # a route without any query parameter, and one whose parameter comes from a sub-dependency
        assert (await c.get("/things/x", params={"verbos": "1"})).status_code == 422
        assert (await c.get("/things/x/page", params={"before": "k"})).status_code == 422


async def test_routes_without_the_dependency_are_unchanged() -> None:
    async with _client() as c:
        r = await c.get("/free", params={"x": "1", "y": "2"})
    assert r.status_code == 200
