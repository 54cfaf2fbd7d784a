"""The services behind the gateway as the domain's ports (``domain/ports.py``), over :class:`Upstreams`.

Each call forwards the caller's bearer token (every service verifies it itself) and hands back the answer as an
:class:`Answer`; a body that is not JSON becomes an ``upstream_error`` body with the same status.
"""

from __future__ import annotations

from typing import Any

import httpx

from llmts_common.errors import error_body
from llmts_gateway.adapters.upstreams import Upstreams
from llmts_gateway.domain.ports import Answer


def answer_of(service: str, resp: httpx.Response) -> Answer:
    try:
        body = resp.json()
    except ValueError:
        body = error_body(
            "upstream_error", f"unexpected answer from the {service} service ({resp.status_code})"
        )
    return Answer(resp.status_code, body)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class TemplatesHttp:
    def __init__(self, upstreams: Upstreams) -> None:
        self._up = upstreams

    async def get_template(self, template_id: str, *, token: str) -> Answer:
        resp = await self._up.request("templates", "GET", f"/templates/{template_id}", headers=bearer(token))
        return answer_of("templates", resp)


class CatalogHttp:
    def __init__(self, upstreams: Upstreams) -> None:
        self._up = upstreams

    async def get_model(self, model_id: str, *, provider: str | None, token: str) -> Answer:
        params = {"provider": provider} if provider else None
        resp = await self._up.request(
            "catalog", "GET", f"/providers/models/{model_id}", headers=bearer(token), params=params
        )
        return answer_of("catalog", resp)


class GeneratorHttp:
    def __init__(self, upstreams: Upstreams) -> None:
        self._up = upstreams

    async def _call(self, method: str, path: str, token: str, **kwargs: Any) -> Answer:
        resp = await self._up.request("generator", method, path, headers=bearer(token), **kwargs)
        return answer_of("generator", resp)

    async def get_job(self, job_id: str, *, token: str) -> Answer:
        return await self._call("GET", f"/generate/{job_id}", token)

    async def get_result(self, job_id: str, *, params: dict[str, Any], token: str) -> Answer:
        return await self._call("GET", f"/generate/{job_id}/result", token, params=params)

    async def history(self, *, params: dict[str, Any], token: str) -> Answer:
        return await self._call("GET", "/history", token, params=params)

    async def history_job(self, job_id: str, *, attempts_limit: int, token: str) -> Answer:
        return await self._call("GET", f"/history/{job_id}", token, params={"attempts_limit": attempts_limit})

    async def preview(self, payload: dict[str, Any], *, token: str) -> Answer:
        return await self._call("POST", "/preview", token, json=payload)
