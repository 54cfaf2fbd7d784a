"""Integration tier: the real templates app (FastAPI lifespan, real Mongo-wire server and Kafka on 127.0.0.1).

Tokens are signed with a throwaway Ed25519 key whose public half is injected into the app's ``JwksVerifier``.
Each session uses its own database (``llmts_test_templates_<hex>``); nothing shared is wiped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import pytest
from tests.support.names import unique, unique_db, unique_user
from tests.support.tokens import Signer, make_signer

from llmts_common.auth import JwksVerifier
from llmts_templates.bootstrap import bootstrap
from llmts_templates.domain.ports import ModelPrice, PriceLookup
from llmts_templates.settings import TemplatesSettings


class FixedPrices:
    """Stands in for the catalog: one known price, every other model unknown."""

    async def price(self, model_id: str, *, authorization: str | None) -> PriceLookup:
        if model_id == "openai/gpt-4o-mini":
            return PriceLookup(ModelPrice(model_id, Decimal("0.15"), Decimal("0.60")))
        return PriceLookup(None, [f"model {model_id!r} is not in the catalog; no cost estimate"])


@pytest.fixture(scope="session")
def signer() -> Signer:
    return make_signer()


@pytest.fixture(scope="session")
def verifier(signer: Signer) -> JwksVerifier:
    return signer.verifier()


@pytest.fixture(scope="session")
def token_for(signer: Signer) -> Callable[[str], dict[str, str]]:
    return signer.headers


@pytest.fixture(scope="session")
def settings() -> TemplatesSettings:
    return TemplatesSettings(
        mongo_db=unique_db("templates"),
        kafka_client_id=unique("templates-it-", 6),
        log_json=False,
        outbox_relay_interval_seconds=0.5,
    )


@pytest.fixture(scope="session")
async def client(settings: TemplatesSettings, verifier: JwksVerifier) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = bootstrap(settings, verifier=verifier, prices=FixedPrices())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://templates", timeout=30) as c:
            yield c


@pytest.fixture
def alice(token_for: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return token_for(unique_user("alice"))


@pytest.fixture
def bob(token_for: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return token_for(unique_user("bob"))
