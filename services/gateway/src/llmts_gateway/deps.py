"""FastAPI dependencies of the gateway: the current user and the shared adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request

from llmts_common.auth import JwksVerifier, Principal, bearer_token
from llmts_common.errors import Forbidden, ServiceUnavailable
from llmts_common.outbox import Outbox
from llmts_gateway.adapters.comparisons import MongoComparisons
from llmts_gateway.adapters.hub import EventHub
from llmts_gateway.adapters.upstreams import Upstreams
from llmts_gateway.handlers import Deps
from llmts_gateway.settings import GatewaySettings


class TokenVerifier(Protocol):
    """The JWKS verifier, wrapped by the revoked-users check (``adapters/accounts.py``)."""

    async def verify(self, token: str) -> Principal: ...


@dataclass
class GatewayContext:
    settings: GatewaySettings
    verifier: TokenVerifier | JwksVerifier
    upstreams: Upstreams
    hub: EventHub
    outbox: Outbox | None = None
    jobs: Deps | None = None  # the generation use cases' ports (handlers.Deps)
    comparisons: MongoComparisons | None = None  # model comparison records (issue 18 #6)


async def get_context(request: Request) -> GatewayContext:  # async: a sync dependency runs in a thread
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Context = Annotated[GatewayContext, Depends(get_context)]


async def get_jobs(ctx: Context) -> Deps:
    if ctx.jobs is None:
        raise ServiceUnavailable("the generation API is not available")
    return ctx.jobs


Jobs = Annotated[Deps, Depends(get_jobs)]


async def get_comparisons(ctx: Context) -> MongoComparisons:
    if ctx.comparisons is None:
        raise ServiceUnavailable("model comparison is not available")
    return ctx.comparisons


Comparisons = Annotated[MongoComparisons, Depends(get_comparisons)]


async def current_user(ctx: Context, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return await ctx.verifier.verify(bearer_token(authorization))


CurrentUser = Annotated[Principal, Depends(current_user)]


async def admin_user(user: CurrentUser) -> Principal:
    """The current user, who must hold the ``admin`` role (403 ``forbidden`` otherwise)."""
    if not user.is_admin:
        raise Forbidden("this operation needs the admin role", details={"required_role": "admin"})
    return user


AdminUser = Annotated[Principal, Depends(admin_user)]
