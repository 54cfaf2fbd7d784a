"""Service-to-service routes: guarded by the shared ``INTERNAL_TOKEN`` (header ``X-Internal-Token``).

Decision: a service without a configured token refuses every internal call (403 ``internal_disabled``) instead of
serving it openly, and in ``ENVIRONMENT=prod`` it refuses to start (see ``BaseServiceSettings``). A missing or wrong
token answers 401 ``invalid_internal_token``; the comparison is constant-time. A user's bearer token never opens an
internal route.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header

from llmts_common.errors import Forbidden, Unauthorized

INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105  (a header name, not a secret)


def check_internal_token(configured: str | None, sent: str | None) -> None:
    """Raise unless ``sent`` is the configured internal token."""
    if not configured:
        raise Forbidden(
            "internal routes are disabled: this service has no INTERNAL_TOKEN", code="internal_disabled"
        )
    if not sent or not hmac.compare_digest(sent.encode(), configured.encode()):
        raise Unauthorized("missing or invalid internal token", code="invalid_internal_token")


def internal_guard(configured: str | None) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency refusing a request without the internal token (use in ``dependencies=[...]``)."""

    async def guard(x_internal_token: Annotated[str | None, Header()] = None) -> None:
        check_internal_token(configured, x_internal_token)

    return guard
